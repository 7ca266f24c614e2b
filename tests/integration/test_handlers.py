"""Handler styles: WorkerEntrypoint (async/sync fetch, fetch without request),
legacy module-level on_fetch, js.Response.new, and env vars."""


def test_entrypoint_async_fetch_with_request(serve):
    srv = serve('''
        from workers import WorkerEntrypoint, Response

        class Default(WorkerEntrypoint):
            async def fetch(self, request):
                return Response("async " + request.method)
    ''')
    r = srv.get("/")
    assert (r.status, r.body) == (200, b"async GET"), r
    r = srv.request("POST", "/", body=b"x")
    assert (r.status, r.body) == (200, b"async POST"), r


def test_entrypoint_sync_fetch(serve):
    srv = serve('''
        from workers import WorkerEntrypoint, Response

        class Default(WorkerEntrypoint):
            def fetch(self, request):
                return Response("sync " + request.method)
    ''')
    r = srv.request("PUT", "/", body=b"x")
    assert (r.status, r.body) == (200, b"sync PUT"), r


def test_entrypoint_fetch_without_request(serve):
    srv = serve('''
        from workers import WorkerEntrypoint, Response

        class Default(WorkerEntrypoint):
            async def fetch(self):
                return Response("no request argument")
    ''')
    r = srv.get("/")
    assert (r.status, r.body) == (200, b"no request argument"), r


def test_legacy_on_fetch_with_workers_response_and_env(serve):
    srv = serve('''
        from workers import Response

        async def on_fetch(request, env):
            return Response(f"legacy {request.method} {env.GREETING}")
    ''', vars={"GREETING": "hi-there"})
    r = srv.get("/")
    assert (r.status, r.body) == (200, b"legacy GET hi-there"), r


def test_js_response_new_with_status_and_headers(serve):
    srv = serve('''
        from js import Response

        async def on_fetch(request, env):
            return Response.new("created!", status=201, headers={"x-made-by": "js"})
    ''')
    r = srv.get("/")
    assert (r.status, r.body) == (201, b"created!"), r
    assert r.header("x-made-by") == "js"


ENV_DUMP = '''
    from workers import WorkerEntrypoint, Response

    class Default(WorkerEntrypoint):
        async def fetch(self, request):
            env = self.env
            return Response.json({
                "s": env.STR, "n": env.NUM, "f": env.FLT, "o": env.OBJ,
                "o_type": type(env.OBJ).__name__, "o_key": env.OBJ["k"],
            })
'''

VARS = {"STR": "hello", "NUM": 42, "FLT": 1.5, "OBJ": {"k": "v", "n": 2}}


def _check_env(r):
    assert r.status == 200, r
    data = r.json()
    assert data["s"] == "hello"
    assert data["n"] == 42
    assert data["f"] == 1.5
    assert data["o"] == {"k": "v", "n": 2}
    assert data["o_type"] == "dict"
    assert data["o_key"] == "v"


def test_self_env_vars_from_toml(serve):
    srv = serve(ENV_DUMP, vars=VARS, fmt="toml")
    _check_env(srv.get("/"))


def test_self_env_vars_from_jsonc(serve):
    srv = serve(ENV_DUMP, vars=VARS, fmt="jsonc")
    _check_env(srv.get("/"))


def test_legacy_env_vars(serve):
    srv = serve('''
        from workers import Response

        async def on_fetch(request, env):
            return Response.json({"s": env.STR, "n": env.NUM, "o": env.OBJ})
    ''', vars=VARS)
    r = srv.get("/")
    assert r.status == 200, r
    assert r.json() == {"s": "hello", "n": 42, "o": {"k": "v", "n": 2}}
