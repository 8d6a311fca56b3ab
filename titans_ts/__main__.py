import sys

from titans_ts.cli import main

sys.exit(main())
