-- release 2: tags, and every existing note tagged 'inbox'
CREATE TABLE tags (
    id INTEGER PRIMARY KEY,
    note_id INTEGER NOT NULL REFERENCES notes(id) ON DELETE CASCADE,
    tag TEXT NOT NULL
);
INSERT INTO tags (note_id, tag) SELECT id, 'inbox' FROM notes;
CREATE INDEX tags_by_note ON tags(note_id);
