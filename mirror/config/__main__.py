"""``python -m mirror.config [--upstream]``: print the README's configuration block (or its ``[[upstream]]``
example), written from the declarations in settings.py."""

import sys

from mirror.config.reference import render

if __name__ == "__main__":
    arguments = sys.argv[1:]
    if arguments not in ([], ["--print-defaults"], ["--upstream"]):
        sys.exit("usage: python -m mirror.config [--print-defaults | --upstream]")
    sys.stdout.write(render("upstream" if arguments == ["--upstream"] else ""))
