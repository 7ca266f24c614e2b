"""Durable Object namespaces and ids (issue 18, stage A), black-box: a
worker binds two classes and answers what its namespaces say; the real
thaw dev serves it. Ids must match Cloudflare's shape and rules: 64 hex
digits, idFromName the same for the same name (across restarts, and
across a class rename), idFromString refusing what is not an id of this
namespace with Cloudflare's messages."""
import json

import pytest

from thawlib import write_worker

WORKER = """
    import json
    from workers import DurableObject, Response, WorkerEntrypoint


    class Counter(DurableObject):
        pass


    class Room(DurableObject):
        pass


    def error(fn):
        try:
            fn()
        except Exception as e:
            return [type(e).__name__, str(e)]
        return None


    class Default(WorkerEntrypoint):
        async def fetch(self, request):
            ns, rooms = self.env.COUNTER, self.env.ROOMS
            a, a2, b = ns.idFromName("alice"), ns.idFromName("alice"), ns.idFromName("bob")
            u1, u2 = ns.newUniqueId(), ns.newUniqueId({"jurisdiction": "eu"})
            back = ns.idFromString(str(u1))
            stub = ns.getByName("alice")
            facts = {
                "alice": str(a), "alice_to_string": a.toString(), "alice_name": a.name,
                "same": a == a2 and a.equals(a2) and len({a, a2}) == 1,
                "differ": a != b and not a.equals(b),
                "room_alice": str(rooms.idFromName("alice")),
                "unique": [str(u1), str(u2)], "unique_name": u1.name,
                "round_trip": back == u1 and back.equals(u1) and back.name is None,
                "upper": str(ns.idFromString(str(a).upper())),
                "stub_id": stub.id == a, "stub_name": stub.name,
                "get_by_id": ns.get(a).id == a,
                "repr": repr(a),
                "errors": {
                    "short": error(lambda: ns.idFromString("abc")),
                    "not_hex": error(lambda: ns.idFromString("z" * 64)),
                    "long": error(lambda: ns.idFromString("0" * 66)),
                    "not_str": error(lambda: ns.idFromString(5)),
                    "other_ns": error(lambda: ns.idFromString(str(rooms.idFromName("x")))),
                    "forged": error(lambda: ns.idFromString("0" * 64)),
                    "get_other": error(lambda: ns.get(rooms.newUniqueId())),
                    "get_str": error(lambda: ns.get(str(a))),
                    "name_not_str": error(lambda: ns.idFromName(7)),
                    "bad_option": error(lambda: ns.newUniqueId({"where": "eu"})),
                    "rpc_kwargs": error(lambda: stub.increment(by=1)),
                },
            }
            return Response(json.dumps(facts), headers={"content-type": "application/json"})
"""

BINDINGS = {"bindings": [{"name": "COUNTER", "class_name": "Counter"},
                         {"name": "ROOMS", "class_name": "Room"}]}
MIGRATIONS = [{"tag": "v1", "new_sqlite_classes": ["Counter"]},
              {"tag": "v2", "new_classes": ["Room"]}]


def _worker(d, source=WORKER, name="do-ids", migrations=MIGRATIONS, bindings=BINDINGS):
    write_worker(d, source, fmt="json", name=name, durable_objects=bindings,
                 migrations=migrations)


def _facts(srv):
    r = srv.get("/")
    assert r.status == 200, f"{r.status}: {r.text}\n{srv.log()[-3000:]}"
    return r.json()


@pytest.fixture
def facts(workdir, thaw_factory):
    _worker(workdir)
    return _facts(thaw_factory(workdir))


def _is_id(s):
    return isinstance(s, str) and len(s) == 64 and s == s.lower() and bytes.fromhex(s)


def test_ids_print_and_compare_as_cloudflare_s(facts):
    assert _is_id(facts["alice"]) and facts["alice_to_string"] == facts["alice"]
    assert facts["alice_name"] == "alice"
    assert facts["same"] is True and facts["differ"] is True
    assert facts["repr"].startswith("DurableObjectId(" + facts["alice"])
    # the same name in another class's namespace is another object
    assert _is_id(facts["room_alice"]) and facts["room_alice"] != facts["alice"]


def test_unique_ids_are_new_each_time_and_come_back_from_their_string(facts):
    u1, u2 = facts["unique"]
    assert _is_id(u1) and _is_id(u2) and u1 != u2
    assert facts["unique_name"] is None
    assert facts["round_trip"] is True
    # idFromString takes upper-case digits and prints lower-case ones
    assert facts["upper"] == facts["alice"]


def test_stubs_carry_their_id_and_name(facts):
    assert facts["stub_id"] is True and facts["stub_name"] == "alice"
    assert facts["get_by_id"] is True


@pytest.mark.parametrize("case, kind, text", [
    ("short", "TypeError", "Invalid Durable Object ID: must be 64 hex digits"),
    ("not_hex", "TypeError", "Invalid Durable Object ID: must be 64 hex digits"),
    ("long", "TypeError", "Invalid Durable Object ID: must be 64 hex digits"),
    ("not_str", "TypeError", "takes a string"),
    ("other_ns", "TypeError", "Durable Object ID is not valid for this namespace."),
    ("forged", "TypeError", "Durable Object ID is not valid for this namespace."),
    ("get_other", "TypeError", "ID is not for this Durable Object class."),
    ("get_str", "TypeError", "takes a DurableObjectId"),
    ("name_not_str", "TypeError", "takes a string"),
    ("bad_option", "TypeError", "no option 'where'"),
    ("rpc_kwargs", "TypeError", "positional arguments only"),
])
def test_bad_ids_and_calls_raise_clearly(facts, case, kind, text):
    err = facts["errors"][case]
    assert err is not None and err[0] == kind and text in err[1], err


def test_id_from_name_is_the_same_after_a_restart(workdir, thaw_factory):
    _worker(workdir)
    srv = thaw_factory(workdir)
    before = _facts(srv)
    srv.stop()
    after = _facts(thaw_factory(workdir))
    assert after["alice"] == before["alice"] and after["room_alice"] == before["room_alice"]
    # unique ids are not
    assert not set(after["unique"]) & set(before["unique"])


def test_a_renamed_class_keeps_its_ids(workdir, thaw_factory):
    _worker(workdir)
    srv = thaw_factory(workdir)
    before = _facts(srv)
    srv.stop()
    renamed = WORKER.replace("class Counter(DurableObject)", "class Tally(DurableObject)")
    _worker(workdir, source=renamed,
            migrations=MIGRATIONS + [{"tag": "v3", "renamed_classes": [
                {"from": "Counter", "to": "Tally"}]}],
            bindings={"bindings": [{"name": "COUNTER", "class_name": "Tally"},
                                   {"name": "ROOMS", "class_name": "Room"}]})
    after = _facts(thaw_factory(workdir))
    assert after["alice"] == before["alice"]


def test_another_worker_s_class_of_the_same_name_has_other_ids(tmp_path, thaw_factory):
    one, two = tmp_path / "one", tmp_path / "two"
    _worker(one, name="one")
    _worker(two, name="two")
    a = _facts(thaw_factory(one))
    b = _facts(thaw_factory(two))
    assert a["alice"] != b["alice"]
