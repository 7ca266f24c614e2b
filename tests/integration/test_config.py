"""Config files: wrangler.toml / wrangler.jsonc (comments, trailing commas) /
wrangler.json; `main` relative to DIR; DIR defaults to the cwd; a bad `main`
is reported naming the key."""
import textwrap

from thawlib import write_config, write_worker

ENTRY = '''
    from workers import WorkerEntrypoint, Response

    class Default(WorkerEntrypoint):
        async def fetch(self, request):
            return Response(f"{self.env.WHO}:{self.env.N}:{self.env.OBJ['deep']['x']}")
'''

JSONC = '''// thaw test config
{
  /* the worker's name,
     spanning lines */
  "name": "jsonc-worker", // trailing comment
  "main": "src/entry.py",
  "compatibility_date": "2024-03-18",
  "compatibility_flags": ["python_workers",],
  "vars": {
    "WHO": "jsonc // not a comment",
    "N": 7,
    "OBJ": {"deep": {"x": "/* nor this */",},},
  },
}
'''


def _entry(workdir, main="src/entry.py", source=ENTRY):
    p = workdir / main
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(textwrap.dedent(source))


def test_wrangler_jsonc_comments_and_trailing_commas(workdir, thaw_factory):
    (workdir / "wrangler.jsonc").write_text(JSONC)
    _entry(workdir)
    r = thaw_factory(workdir).get("/")
    assert (r.status, r.text) == (200, "jsonc // not a comment:7:/* nor this */"), r


def test_wrangler_json(workdir, thaw_factory):
    write_config(workdir, fmt="json",
                 vars={"WHO": "json", "N": 3, "OBJ": {"deep": {"x": "y"}}})
    _entry(workdir)
    r = thaw_factory(workdir).get("/")
    assert (r.status, r.text) == (200, "json:3:y"), r


def test_wrangler_toml(workdir, thaw_factory):
    write_config(workdir, vars={"WHO": "toml", "N": 5, "OBJ": {"deep": {"x": "z"}}})
    _entry(workdir)
    r = thaw_factory(workdir).get("/")
    assert (r.status, r.text) == (200, "toml:5:z"), r


def test_main_in_other_directory_is_on_sys_path(workdir, thaw_factory):
    write_config(workdir, main="app/py/worker.py")
    _entry(workdir, "app/py/worker.py", '''
        import sibling
        from workers import WorkerEntrypoint, Response

        class Default(WorkerEntrypoint):
            async def fetch(self, request):
                return Response(sibling.NAME)
    ''')
    (workdir / "app" / "py" / "sibling.py").write_text('NAME = "sibling module"\n')
    r = thaw_factory(workdir).get("/")
    assert (r.status, r.body) == (200, b"sibling module"), r


def test_dir_defaults_to_cwd(workdir, thaw_factory):
    write_worker(workdir, '''
        from workers import WorkerEntrypoint, Response

        class Default(WorkerEntrypoint):
            async def fetch(self, request):
                return Response("served from cwd")
    ''')
    srv = thaw_factory(workdir, cwd=str(workdir), pass_dir=False)
    r = srv.get("/")
    assert (r.status, r.body) == (200, b"served from cwd"), r


def _expect_config_error(srv, *needles):
    """thaw either exits non-zero or serves 500; the message names needles."""
    srv.spawn()
    if srv.wait_ready_or_exit():
        r = srv.get("/")
        assert r.status == 500, r
        text = r.text + srv.wait_log(*needles)
    else:
        assert srv.proc.returncode != 0, "thaw exited 0 on a bad config"
        text = srv.output()
    for n in needles:
        assert n in text, f"error does not mention {n!r}:\n{text}"


def test_missing_main_key(workdir, thaw_factory):
    write_config(workdir, main=None)
    _entry(workdir)
    _expect_config_error(thaw_factory(workdir, start=False), "main")


def test_main_not_python(workdir, thaw_factory):
    write_config(workdir, main="src/index.js")
    _entry(workdir, "src/index.js", "export default {}\n")
    _expect_config_error(thaw_factory(workdir, start=False), "main", "index.js")


def test_main_file_does_not_exist(workdir, thaw_factory):
    write_config(workdir, main="src/nope_missing.py")
    _expect_config_error(thaw_factory(workdir, start=False), "nope_missing.py")


def test_no_config_file(workdir, thaw_factory):
    _entry(workdir)
    _expect_config_error(thaw_factory(workdir, start=False), "wrangler")


def test_dir_does_not_exist(tmp_path, thaw_factory):
    missing = tmp_path / "no-such-worker-dir"
    _expect_config_error(thaw_factory(missing, start=False), "no-such-worker-dir")
