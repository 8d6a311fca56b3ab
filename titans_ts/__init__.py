"""titans_ts: Titans (learning to memorize at test time) for time series and genomics.

Subpackages: :mod:`titans_ts.memory` (the neural long-term memory), :mod:`titans_ts.backbone`
(LMM / MAC / MAG / MAL), :mod:`titans_ts.encoders`, :mod:`titans_ts.datasets`,
:mod:`titans_ts.estimators`. Importing this package imports none of them.
"""

__version__ = "0.1.0.dev0"
