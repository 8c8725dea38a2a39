-- release 4: a settings table (the migration is fine; the release's server,
-- built against the wrong schema, never answers /health with 200)
CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
