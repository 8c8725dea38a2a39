-- release 3 (broken on purpose): the rebuild copies a column that does not exist
CREATE TABLE notes_new (
    id INTEGER PRIMARY KEY,
    text TEXT NOT NULL,
    created_at TEXT NOT NULL
);
INSERT INTO notes_new (id, text, created_at) SELECT id, contents, created_at FROM notes;
DROP TABLE notes;
ALTER TABLE notes_new RENAME TO notes;
