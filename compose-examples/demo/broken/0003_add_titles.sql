-- release 3, broken on purpose (make demo ships it once): the table rebuild
-- copies a column that does not exist, so the upgrade fails half-way and
-- ferry restores the snapshot. The fixed release is migrations/0003_add_titles.sql.
CREATE TABLE notes_new (
    id INTEGER PRIMARY KEY,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at TEXT NOT NULL
);
INSERT INTO notes_new (id, title, body, created_at)
    SELECT id, headline, body, created_at FROM notes;
DROP TABLE notes;
ALTER TABLE notes_new RENAME TO notes;
