"""``python -m tui FILE``: the same as ``quillmate write FILE``."""

from assistant.cli.common import report_errors
from tui.cli import write

if __name__ == "__main__":
    with report_errors(debug=False):
        write.main(prog_name="quillmate write", standalone_mode=False)
