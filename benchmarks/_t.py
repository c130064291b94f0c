import sys, time, tempfile, statistics, os
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import keys as kb
from pytest_parex.cache.digests import FileIndex
from pytest_parex.cache import key as K
from pytest_parex.cache.listing import Scanner
from pytest_parex.kinds.base import RunContext
N = int(sys.argv[1])
base = Path(tempfile.mkdtemp())
root = base / "tree"; kb.build_tree(root, N); kb.git_init(root)
state = base / "state"; state.mkdir()
time.sleep(2.2)
for i in range(2):
    kb.compute_keys(root, state, kb.Timer())
index, _ = FileIndex.load(state / "index.json")
ctx = RunContext(rootdir=root, log_dir=state, state_dir=state, config_path="")
checks = kb.checks_of(root)
T = {}
def wrap(obj, name):
    f = getattr(obj, name)
    def w(*a, **k):
        s = time.perf_counter()
        try: return f(*a, **k)
        finally: T[name] = T.get(name, 0) + time.perf_counter() - s
    setattr(obj, name, w)
for n in ("_python_of", "_config_files", "_user_files", "_through_links", "_linked", "_imported"):
    wrap(K.KeyBuilder, n)
for n in ("matching", "project_files"):
    wrap(Scanner, n)
wrap(FileIndex, "digests")
wrap(K.KeyParts, "digest")
wrap(K.KeyParts, "__init__")
R=3
for _ in range(R):
    s = time.perf_counter()
    parts = K.KeyBuilder(root, index, context=ctx, config_path=root/"pyproject.toml", exclude=[".pytest_cache"]).parts(checks)
    for p in parts.values(): p.digest()
    T["TOTAL"] = T.get("TOTAL",0) + time.perf_counter()-s
for k, v in sorted(T.items(), key=lambda x: -x[1]):
    print(f"{k:25} {v/R*1000:7.1f} ms")
print(os.getloadavg())
