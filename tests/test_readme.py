"""The README's test command is the one CI runs."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_test_command() -> str:
    text = (ROOT / "README.md").read_text()
    block = text.split("<!-- test-command -->", 1)[1]
    return block.split("```bash", 1)[1].split("```", 1)[0].strip()


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    body = ci.split("# test-command-begin", 1)[1].split("# test-command-end", 1)[0].strip()
    assert body == _readme_test_command()
    assert "pytest" in body
