# The page at "/": a little client for the room's WebSocket.
PAGE = """<!doctype html>
<html lang="en">
<meta charset="utf-8">
<title>thaw chat</title>
<style>
  body { font: 16px system-ui, sans-serif; max-width: 40em; margin: 2em auto; }
  #log { border: 1px solid #ccc; height: 20em; overflow-y: auto; padding: .5em;
         white-space: pre-wrap; }
  form { display: flex; gap: .5em; margin-top: .5em; }
  #text { flex: 1; }
</style>
<h1>Room <span id="room"></span></h1>
<div id="log"></div>
<form id="form"><input id="text" autocomplete="off" placeholder="Say something">
<button>Send</button></form>
<script>
  const params = new URLSearchParams(location.search);
  const room = params.get("room") || "lobby";
  const name = params.get("name") || prompt("Your name?") || "anon";
  document.getElementById("room").textContent = room;
  const log = document.getElementById("log");
  const show = (line) => {
    log.append(line + "\\n");
    log.scrollTop = log.scrollHeight;
  };
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${scheme}//${location.host}/ws?room=` +
                           `${encodeURIComponent(room)}&name=${encodeURIComponent(name)}`);
  ws.onmessage = (event) => show(event.data);
  ws.onclose = (event) => show(`* disconnected (${event.code})`);
  document.getElementById("form").onsubmit = (event) => {
    event.preventDefault();
    const text = document.getElementById("text");
    if (text.value) ws.send(text.value);
    text.value = "";
  };
</script>
</html>
"""
