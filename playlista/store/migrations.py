"""The schema, as an ordered list of named migrations.

Each step runs in the same transaction as the row that records it in ``migrations``, so a
database is always at a step boundary. Steps are never edited once released: a change is a
new step at the end.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import duckdb

log = logging.getLogger(__name__)

_INITIAL = """
CREATE TABLE files (
    path          VARCHAR PRIMARY KEY,
    size          BIGINT NOT NULL,
    mtime_ns      BIGINT NOT NULL,
    fingerprint   VARCHAR,
    status        VARCHAR NOT NULL CHECK (status IN ('present', 'deleted')),
    first_seen_at TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    deleted_at    TIMESTAMPTZ,
    moved_from    VARCHAR
);

CREATE TABLE track_tags (
    path                     VARCHAR PRIMARY KEY,
    title                    VARCHAR,
    artist                   VARCHAR,
    album                    VARCHAR,
    albumartist              VARCHAR,
    genre                    VARCHAR,
    year                     INTEGER,
    track_no                 INTEGER,
    track_total              INTEGER,
    disc_no                  INTEGER,
    disc_total               INTEGER,
    musicbrainz_trackid      VARCHAR,
    musicbrainz_albumid      VARCHAR,
    musicbrainz_artistid     VARCHAR,
    replaygain_track_gain_db DOUBLE,
    replaygain_track_peak    DOUBLE,
    replaygain_album_gain_db DOUBLE,
    replaygain_album_peak    DOUBLE,
    codec                    VARCHAR,
    bitrate                  INTEGER,
    sample_rate              INTEGER,
    channels                 INTEGER,
    stream_duration_s        DOUBLE,
    analyzed_at              TIMESTAMPTZ NOT NULL
);

CREATE TABLE track_features (
    path                  VARCHAR PRIMARY KEY,
    duration_s            DOUBLE NOT NULL,
    decoder               VARCHAR NOT NULL,
    bpm                   DOUBLE,
    bpm_confidence        DOUBLE,
    "key"                 VARCHAR,
    mode                  VARCHAR CHECK (mode IN ('major', 'minor')),
    key_strength          DOUBLE,
    camelot               VARCHAR,
    loudness_lufs         DOUBLE,
    loudness_range_lu     DOUBLE,
    energy                DOUBLE,
    danceability          DOUBLE,
    spectral_centroid_hz  DOUBLE,
    spectral_rolloff_hz   DOUBLE,
    spectral_flatness     DOUBLE,
    spectral_bandwidth_hz DOUBLE,
    zero_crossing_rate    DOUBLE,
    onset_rate            DOUBLE,
    mfcc_mean             FLOAT[13],
    mfcc_std              FLOAT[13],
    chroma_mean           FLOAT[12],
    warnings              VARCHAR[],
    analyzer_version      INTEGER NOT NULL,
    worker                VARCHAR NOT NULL,
    elapsed_s             DOUBLE NOT NULL,
    analyzed_at           TIMESTAMPTZ NOT NULL
);

CREATE TABLE failures (
    path            VARCHAR PRIMARY KEY,
    size            BIGINT,
    mtime_ns        BIGINT,
    error_class     VARCHAR NOT NULL,
    message         VARCHAR NOT NULL,
    retryable       BOOLEAN NOT NULL,
    attempts        INTEGER NOT NULL,
    worker          VARCHAR,
    first_failed_at TIMESTAMPTZ NOT NULL,
    last_failed_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE runs (
    run_id        VARCHAR PRIMARY KEY,
    flow_run_id   VARCHAR,
    roots         VARCHAR[] NOT NULL,
    full_rescan   BOOLEAN NOT NULL,
    status        VARCHAR NOT NULL,
    started_at    TIMESTAMPTZ NOT NULL,
    finished_at   TIMESTAMPTZ,
    files_seen    BIGINT,
    new           BIGINT,
    changed       BIGINT,
    unchanged     BIGINT,
    moved         BIGINT,
    deleted       BIGINT,
    retried       BIGINT,
    analyzed      BIGINT,
    failed        BIGINT,
    audio_seconds DOUBLE,
    wall_seconds  DOUBLE
);

CREATE TABLE feature_sources (
    feature VARCHAR PRIMARY KEY,
    source  VARCHAR NOT NULL
);

CREATE VIEW library AS
SELECT
    f.path, t.title, t.artist, t.album, t.albumartist, t.genre, t.year, t.track_no,
    t.track_total, t.disc_no, t.disc_total, x.duration_s, t.codec, t.bitrate, t.sample_rate,
    t.channels, x.bpm, x.bpm_confidence, x."key", x.mode, x.key_strength, x.camelot,
    x.loudness_lufs, x.loudness_range_lu, x.energy, x.danceability, x.spectral_centroid_hz,
    x.spectral_rolloff_hz, x.spectral_flatness, x.spectral_bandwidth_hz, x.zero_crossing_rate,
    x.onset_rate, x.mfcc_mean, x.mfcc_std, x.chroma_mean, t.musicbrainz_trackid,
    t.musicbrainz_albumid, t.musicbrainz_artistid, t.replaygain_track_gain_db,
    t.replaygain_track_peak, t.replaygain_album_gain_db, t.replaygain_album_peak,
    f.size, f.mtime_ns, x.decoder, x.worker, x.warnings, x.analyzer_version, x.analyzed_at
FROM files AS f
JOIN track_features AS x USING (path)
LEFT JOIN track_tags AS t USING (path)
WHERE f.status = 'present';
"""

_MUSICNN = """
CREATE TABLE musicnn_labels (
    model VARCHAR NOT NULL,
    idx   INTEGER NOT NULL,
    tag   VARCHAR NOT NULL,
    PRIMARY KEY (model, idx)
);

CREATE TABLE track_musicnn (
    path            VARCHAR NOT NULL,
    model           VARCHAR NOT NULL,
    scores          FLOAT[50] NOT NULL,
    embedding       FLOAT[200] NOT NULL,
    patches         INTEGER NOT NULL,
    musicnn_version INTEGER NOT NULL,
    worker          VARCHAR,
    analyzed_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (path, model)
);

ALTER TABLE runs ADD COLUMN refreshed BIGINT;

CREATE VIEW track_tag_scores AS
SELECT m.path, m.model, l.tag, m.scores[l.idx + 1] AS score
FROM track_musicnn AS m
JOIN musicnn_labels AS l USING (model);

CREATE OR REPLACE VIEW library AS
WITH tag_best AS (
    SELECT path, tag, max(score) AS score FROM track_tag_scores GROUP BY path, tag
), top AS (
    SELECT path, list(tag ORDER BY score DESC, tag)[1:5] AS top_tags
    FROM tag_best GROUP BY path
)
SELECT
    f.path, t.title, t.artist, t.album, t.albumartist, t.genre, t.year, t.track_no,
    t.track_total, t.disc_no, t.disc_total, x.duration_s, t.codec, t.bitrate, t.sample_rate,
    t.channels, x.bpm, x.bpm_confidence, x."key", x.mode, x.key_strength, x.camelot,
    x.loudness_lufs, x.loudness_range_lu, x.energy, x.danceability, x.spectral_centroid_hz,
    x.spectral_rolloff_hz, x.spectral_flatness, x.spectral_bandwidth_hz, x.zero_crossing_rate,
    x.onset_rate, x.mfcc_mean, x.mfcc_std, x.chroma_mean, top.top_tags,
    t.musicbrainz_trackid, t.musicbrainz_albumid, t.musicbrainz_artistid,
    t.replaygain_track_gain_db, t.replaygain_track_peak, t.replaygain_album_gain_db,
    t.replaygain_album_peak, f.size, f.mtime_ns, x.decoder, x.worker, x.warnings,
    x.analyzer_version, x.analyzed_at
FROM files AS f
JOIN track_features AS x USING (path)
LEFT JOIN track_tags AS t USING (path)
LEFT JOIN top USING (path)
WHERE f.status = 'present';

-- The n tracks most like `target` by one model's embedding, most similar first.
CREATE MACRO similar_tracks(target, n := 10, embedding_model := 'MSD_musicnn') AS TABLE
SELECT l.path, l.title, l.artist, l.album,
       array_cosine_similarity(e.embedding, seed.embedding) AS similarity
FROM track_musicnn AS seed
JOIN track_musicnn AS e ON e.model = seed.model AND e.path <> seed.path
JOIN library AS l ON l.path = e.path
WHERE seed.path = target AND seed.model = embedding_model
ORDER BY similarity DESC, l.path
LIMIT n;
"""

_PLAYLISTS = """
-- One row per generated playlist. `spec` names the entry (of a YAML file, or a command) that
-- made it: regenerating the entry replaces all its playlists (a clusters entry makes several).
CREATE TABLE playlists (
    name       VARCHAR PRIMARY KEY,
    spec       VARCHAR NOT NULL,
    title      VARCHAR NOT NULL,
    method     VARCHAR NOT NULL
               CHECK (method IN ('rules', 'similar', 'path', 'harmonic', 'clusters')),
    parameters JSON NOT NULL,
    file       VARCHAR,
    tracks     INTEGER NOT NULL,
    duration_s DOUBLE NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE playlist_tracks (
    playlist VARCHAR NOT NULL,
    position INTEGER NOT NULL,
    path     VARCHAR NOT NULL,
    PRIMARY KEY (playlist, position)
);
"""

_REPLAYGAIN = """
ALTER TABLE track_features ADD COLUMN true_peak_dbtp DOUBLE;
-- The track's 400-ms blocks above the -70 LUFS absolute gate, in 0.1-LU bins (bin b holds
-- the blocks of loudness -70 + b/10 <= l < -70 + (b+1)/10): how many, and their summed
-- K-weighted mean-square power. An album's gated loudness is combined from them.
ALTER TABLE track_features
    ADD COLUMN loudness_histogram STRUCT(bin SMALLINT, blocks INTEGER, energy DOUBLE)[];

CREATE OR REPLACE VIEW library AS
WITH tag_best AS (
    SELECT path, tag, max(score) AS score FROM track_tag_scores GROUP BY path, tag
), top AS (
    SELECT path, list(tag ORDER BY score DESC, tag)[1:5] AS top_tags
    FROM tag_best GROUP BY path
)
SELECT
    f.path, t.title, t.artist, t.album, t.albumartist, t.genre, t.year, t.track_no,
    t.track_total, t.disc_no, t.disc_total, x.duration_s, t.codec, t.bitrate, t.sample_rate,
    t.channels, x.bpm, x.bpm_confidence, x."key", x.mode, x.key_strength, x.camelot,
    x.loudness_lufs, x.loudness_range_lu, x.true_peak_dbtp,
    -18 - x.loudness_lufs AS replaygain_track_gain_db,
    pow(10, x.true_peak_dbtp / 20) AS replaygain_track_peak,
    x.energy, x.danceability, x.spectral_centroid_hz,
    x.spectral_rolloff_hz, x.spectral_flatness, x.spectral_bandwidth_hz, x.zero_crossing_rate,
    x.onset_rate, x.mfcc_mean, x.mfcc_std, x.chroma_mean, top.top_tags,
    t.musicbrainz_trackid, t.musicbrainz_albumid, t.musicbrainz_artistid,
    t.replaygain_track_gain_db AS tag_replaygain_track_gain_db,
    t.replaygain_track_peak AS tag_replaygain_track_peak,
    t.replaygain_album_gain_db AS tag_replaygain_album_gain_db,
    t.replaygain_album_peak AS tag_replaygain_album_peak,
    f.size, f.mtime_ns, x.decoder, x.worker, x.warnings, x.analyzer_version, x.analyzed_at
FROM files AS f
JOIN track_features AS x USING (path)
LEFT JOIN track_tags AS t USING (path)
LEFT JOIN top USING (path)
WHERE f.status = 'present';

-- The album of each track: its albumartist and album tags when it has both, its album tag
-- and folder when it has no albumartist, its folder when it has no album tag.
CREATE VIEW album_tracks AS
SELECT path,
       CASE WHEN album IS NOT NULL THEN albumartist END AS albumartist,
       album,
       CASE WHEN album IS NULL OR albumartist IS NULL THEN parse_dirpath(path) END AS folder
FROM library;

-- Per album, BS.1770's gated loudness of all its tracks' blocks together (their histograms
-- summed; the relative gate 10 LU under the loudness of the blocks above -70 LUFS; the bin
-- the gate falls in counted for its share above the gate), ReplayGain 2.0's album gain
-- (-18 LUFS reference) and the album's peak, the highest true peak of its tracks.
CREATE VIEW albums AS
WITH member AS (
    SELECT a.albumartist, a.album, a.folder, x.duration_s, x.true_peak_dbtp,
           x.loudness_histogram
    FROM album_tracks AS a JOIN track_features AS x USING (path)
), bins AS (
    SELECT albumartist, album, folder, h.bin, sum(h.blocks) AS blocks, sum(h.energy) AS energy
    FROM member, unnest(loudness_histogram) AS u(h)
    GROUP BY ALL
), gate AS (
    SELECT *, 10 * log10(sum(energy) OVER album / sum(blocks) OVER album) - 0.691 - 10 AS lufs
    FROM bins
    WINDOW album AS (PARTITION BY albumartist, album, folder)
), gated AS (
    SELECT albumartist, album, folder,
           10 * log10(sum(energy * share) / nullif(sum(blocks * share), 0)) - 0.691
               AS loudness_lufs
    FROM (SELECT *, greatest(0, least(1, (-70 + (bin + 1) / 10 - lufs) * 10)) AS share
          FROM gate)
    GROUP BY ALL
), summary AS (
    SELECT albumartist, album, folder, count(*) AS tracks, sum(duration_s) AS duration_s,
           max(true_peak_dbtp) AS true_peak_dbtp
    FROM member
    GROUP BY ALL
)
SELECT s.albumartist, s.album, s.folder, s.tracks, s.duration_s, g.loudness_lufs,
       -18 - g.loudness_lufs AS replaygain_album_gain_db, s.true_peak_dbtp,
       pow(10, s.true_peak_dbtp / 20) AS replaygain_album_peak
FROM summary AS s
LEFT JOIN gated AS g
    ON g.albumartist IS NOT DISTINCT FROM s.albumartist
   AND g.album IS NOT DISTINCT FROM s.album
   AND g.folder IS NOT DISTINCT FROM s.folder;

-- What a tagger writes into each file: ReplayGain 2.0 track and album gain and peak.
CREATE VIEW replaygain AS
SELECT l.path, a.albumartist, a.album, a.folder, l.replaygain_track_gain_db,
       l.replaygain_track_peak, b.replaygain_album_gain_db, b.replaygain_album_peak
FROM library AS l
JOIN album_tracks AS a USING (path)
LEFT JOIN albums AS b
    ON b.albumartist IS NOT DISTINCT FROM a.albumartist
   AND b.album IS NOT DISTINCT FROM a.album
   AND b.folder IS NOT DISTINCT FROM a.folder;
"""

_OUTCOMES = """
-- A failure of a file whose content has not changed leaves its last good analysis in place:
-- when it was made, or NULL when the library holds none for the file.
ALTER TABLE failures ADD COLUMN kept_analysis_at TIMESTAMPTZ;
-- What ended a run that failed, and the folders its discovery could not list.
ALTER TABLE runs ADD COLUMN error VARCHAR;
ALTER TABLE runs ADD COLUMN unlisted BIGINT;
"""

_OUTDATED = """
-- Unchanged files analysed again because their analysis is of an older analyser version;
-- until now they were counted in retried, with the failures tried again.
ALTER TABLE runs ADD COLUMN outdated BIGINT;
"""

MIGRATIONS: list[tuple[str, str]] = [
    ("0001_initial", _INITIAL),
    ("0002_musicnn", _MUSICNN),
    ("0003_playlists", _PLAYLISTS),
    ("0004_replaygain", _REPLAYGAIN),
    ("0005_outcomes", _OUTCOMES),
    ("0006_outdated", _OUTDATED),
]


def migrate(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Apply the migrations this database lacks, in order; return the names applied."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS migrations (name VARCHAR PRIMARY KEY, "
        "applied_at TIMESTAMPTZ NOT NULL)"
    )
    done = {name for (name,) in con.execute("SELECT name FROM migrations").fetchall()}
    applied = []
    for name, sql in MIGRATIONS:
        if name in done:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(sql)
            con.execute("INSERT INTO migrations VALUES (?, ?)", [name, datetime.now(UTC)])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        log.info("applied migration %s", name)
        applied.append(name)
    return applied
