# The part of diskcache 5.6 the edge uses, typed (diskcache ships no py.typed and no stub package exists).
# mypy reads this through `mypy_path` in pyproject; tests/unit/test_types.py (mypy's stubtest) holds these names and
# signatures equal to the installed diskcache, so an upgrade that changes one fails there.
from diskcache.core import Cache as Cache, Disk as Disk, UNKNOWN as UNKNOWN
