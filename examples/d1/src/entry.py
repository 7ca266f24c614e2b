"""A small notes API on D1:

    GET    /notes        every note, newest first
    POST   /notes        {"title": ..., "body": ...} -> the new note (201)
    GET    /notes/ID     one note, or 404
    DELETE /notes/ID     204, or 404
"""
from urllib.parse import urlparse

from workers import Response, WorkerEntrypoint


def error(status, message):
    return Response.json({"error": message}, status=status)


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        db = self.env.DB
        parts = [p for p in urlparse(request.url).path.split("/") if p]
        if not parts or parts[0] != "notes" or len(parts) > 2:
            return error(404, "try GET /notes")
        if len(parts) == 1:
            if request.method == "GET":
                res = await db.prepare(
                    "SELECT id, title, body, created_at FROM notes ORDER BY id DESC").all()
                return Response.json(res.results)
            if request.method == "POST":
                data = await request.json()
                title = data.get("title") if isinstance(data, dict) else None
                if not isinstance(title, str) or not title.strip():
                    return error(400, "a note needs a non-empty \"title\"")
                note = await db.prepare(
                    "INSERT INTO notes (title, body) VALUES (?, ?) "
                    "RETURNING id, title, body, created_at"
                ).bind(title.strip(), str(data.get("body", ""))).first()
                return Response.json(note, status=201)
            return error(405, "GET or POST /notes")
        if not parts[1].isdigit():
            return error(404, "a note id is a number")
        note_id = int(parts[1])
        if request.method == "GET":
            note = await db.prepare(
                "SELECT id, title, body, created_at FROM notes WHERE id = ?").bind(note_id).first()
            return Response.json(note) if note else error(404, f"no note {note_id}")
        if request.method == "DELETE":
            res = await db.prepare("DELETE FROM notes WHERE id = ?").bind(note_id).run()
            if res.meta.changes == 0:
                return error(404, f"no note {note_id}")
            return Response(None, status=204)
        return error(405, "GET or DELETE /notes/ID")
