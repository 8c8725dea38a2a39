-- release 3: every note gets a title, its first line cut to 40 characters,
-- and the tag 'inbox' becomes 'todo'
ALTER TABLE notes ADD COLUMN title TEXT NOT NULL DEFAULT '';
UPDATE notes SET title = substr(
    CASE WHEN instr(body, char(10)) > 0 THEN substr(body, 1, instr(body, char(10)) - 1)
         ELSE body END, 1, 40);
UPDATE tags SET tag = 'todo' WHERE tag = 'inbox';
