-- The notes table: apply with `thaw d1 execute DB . --file schema.sql`
-- (in one transaction; running it twice starts over).
DROP TABLE IF EXISTS notes;
CREATE TABLE notes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    title TEXT NOT NULL,
    body TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL DEFAULT (datetime('now'))
);
INSERT INTO notes (title, body) VALUES ('Welcome', 'Your first note, from schema.sql.');
