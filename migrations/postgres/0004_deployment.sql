-- One row naming this deployment: every replica on this database reads the same id, and a
-- second deployment (staging beside production, another test database) has its own, so the two
-- can share one Redis without counting each other's usage. Random, made once with the database.

CREATE TABLE deployment (
    singleton   INTEGER PRIMARY KEY CHECK (singleton = 1),
    id          TEXT    NOT NULL
);
INSERT INTO deployment (singleton, id) VALUES (1, gen_random_uuid()::text);
