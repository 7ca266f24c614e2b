"""examples/durable-objects-chat, deployed unchanged with the real thaw
dev: the page at "/", and two python3-websockets clients chatting in a
room (a newcomer gets the room's last lines from the object's SQL
table)."""
import asyncio
import shutil

import websockets

from thawlib import REPO


def test_the_chat_example_serves_its_page_and_two_clients_chat(tmp_path, thaw_factory):
    d = tmp_path / "example"
    shutil.copytree(REPO / "examples/durable-objects-chat", d,
                    ignore=shutil.ignore_patterns(".thaw"))
    t = thaw_factory(d)
    page = t.get("/")
    assert page.status == 200 and "text/html" in page.headers["content-type"]
    assert "new WebSocket(" in page.text and "/ws?room=" in page.text
    assert t.get("/ws").status == 426  # not an upgrade

    def url(name, room="test"):
        return f"ws://127.0.0.1:{t.port}/ws?room={room}&name={name}"

    async def go():
        async with websockets.connect(url("ann")) as ann:
            assert await ann.recv() == "* ann joined"
            async with websockets.connect(url("bob")) as bob:
                assert await bob.recv() == "* bob joined"
                assert await ann.recv() == "* bob joined"
                await ann.send("hello bob")
                assert (await ann.recv(), await bob.recv()) == ("ann: hello bob",) * 2
                await bob.send("hi ann")
                assert (await ann.recv(), await bob.recv()) == ("bob: hi ann",) * 2
            assert await ann.recv() == "* bob left"
            async with websockets.connect(url("cy")) as cy:  # the history, then the join
                got = [await cy.recv() for _ in range(3)]
            async with websockets.connect(url("dee", room="other")) as dee:
                alone = await dee.recv()
        return got, alone
    got, alone = asyncio.run(asyncio.wait_for(go(), 30))
    assert got == ["ann: hello bob", "bob: hi ann", "* cy joined"]
    assert alone == "* dee joined"  # another room: another object, no history
