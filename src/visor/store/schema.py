"""Schema migrations, applied in order; `MIGRATIONS[i]` takes a file from version i to i + 1."""

from __future__ import annotations

_V1 = """
CREATE SEQUENCE dataset_ids START 1;
CREATE TABLE datasets (
    id INTEGER PRIMARY KEY,
    name VARCHAR NOT NULL UNIQUE,
    root VARCHAR NOT NULL,
    format VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    num_samples INTEGER NOT NULL,
    num_labels BIGINT NOT NULL,
    categories VARCHAR[] NOT NULL,
    report JSON
);
-- No key constraints on the large tables: DuckDB's indexes slow bulk loads down, and the
-- services assign ids and keep them unique.
CREATE TABLE samples (
    dataset_id INTEGER NOT NULL,
    id INTEGER NOT NULL,
    path VARCHAR NOT NULL,
    filename VARCHAR NOT NULL,
    width INTEGER,
    height INTEGER,
    size_bytes BIGINT,
    split VARCHAR,
    classes VARCHAR[],
    tags VARCHAR[],
    flags VARCHAR[],
    num_labels INTEGER,
    metadata JSON
);
CREATE TABLE labels (
    dataset_id INTEGER NOT NULL,
    sample_id INTEGER NOT NULL,
    kind VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    class VARCHAR,
    x DOUBLE,
    y DOUBLE,
    w DOUBLE,
    h DOUBLE,
    score DOUBLE,
    iscrowd BOOLEAN,
    flags VARCHAR[]
);
CREATE TABLE jobs (
    id VARCHAR PRIMARY KEY,
    kind VARCHAR NOT NULL,
    dataset VARCHAR,
    params JSON,
    state VARCHAR NOT NULL,
    done BIGINT NOT NULL DEFAULT 0,
    total BIGINT,
    message VARCHAR,
    error VARCHAR,
    result JSON,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ
);
"""

# Version 2: embeddings. Vectors live in one table per dimension (`embeddings_<d>`, created
# when a model of that dimension is first used) because a FLOAT[d] column has one d.
_V2 = """
CREATE TABLE embedding_models (
    name VARCHAR PRIMARY KEY,
    dim INTEGER NOT NULL
);
CREATE TABLE embedding_errors (
    dataset_id INTEGER NOT NULL,
    sample_id INTEGER NOT NULL,
    model VARCHAR NOT NULL,
    job_id VARCHAR,
    reason VARCHAR NOT NULL
);
"""

# Version 3: 2D maps of a dataset's vectors, and their points.
_V3 = """
CREATE SEQUENCE map_ids START 1;
CREATE TABLE maps (
    id INTEGER PRIMARY KEY,
    dataset_id INTEGER NOT NULL,
    model VARCHAR NOT NULL,
    method VARCHAR NOT NULL,
    params JSON,
    num_points INTEGER NOT NULL,
    is_default BOOLEAN NOT NULL DEFAULT false,
    job_id VARCHAR,
    seconds DOUBLE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE map_points (
    dataset_id INTEGER NOT NULL,
    map_id INTEGER NOT NULL,
    sample_id INTEGER NOT NULL,
    x FLOAT NOT NULL,
    y FLOAT NOT NULL
);
"""

# Version 4: per-sample results of the neighbour analyses (content hash and duplicate group
# from `duplicates`, uniqueness score), and a record of each analysis run.
_V4 = """
ALTER TABLE samples ADD COLUMN content_hash VARCHAR;
ALTER TABLE samples ADD COLUMN duplicate_group INTEGER;
ALTER TABLE samples ADD COLUMN uniqueness FLOAT;
CREATE TABLE analyses (
    dataset_id INTEGER NOT NULL,
    kind VARCHAR NOT NULL,
    model VARCHAR,
    params JSON,
    summary JSON,
    job_id VARCHAR,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
"""

# Version 5: label ids (per-box results refer to them), and detection evaluations: one row per
# evaluation with its metrics, an outcome per box, and counts per sample.
_V5 = """
CREATE SEQUENCE label_ids START 1;
ALTER TABLE labels ADD COLUMN id BIGINT DEFAULT nextval('label_ids');
CREATE SEQUENCE evaluation_ids START 1;
CREATE TABLE evaluations (
    id INTEGER PRIMARY KEY,
    dataset_id INTEGER NOT NULL,
    name VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    params JSON,
    metrics JSON,
    job_id VARCHAR,
    seconds DOUBLE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE evaluation_boxes (
    evaluation_id INTEGER NOT NULL,
    sample_id INTEGER NOT NULL,
    label_id BIGINT NOT NULL,
    kind VARCHAR NOT NULL,
    outcome VARCHAR,
    iou FLOAT,
    match_id BIGINT,
    gt_class VARCHAR,
    pred_class VARCHAR
);
CREATE TABLE evaluation_samples (
    evaluation_id INTEGER NOT NULL,
    sample_id INTEGER NOT NULL,
    tp INTEGER NOT NULL,
    fp INTEGER NOT NULL,
    fn INTEGER NOT NULL,
    confused INTEGER NOT NULL
);
"""

# Version 6: image quality, per sample: the pixel statistics and the issues they point to.
_V6 = """
CREATE TABLE image_quality (
    dataset_id INTEGER NOT NULL,
    sample_id INTEGER NOT NULL,
    brightness FLOAT,
    brightness_p1 FLOAT,
    brightness_p5 FLOAT,
    brightness_p99 FLOAT,
    entropy FLOAT,
    blurriness FLOAT,
    gray_spread FLOAT,
    grayscale BOOLEAN,
    width INTEGER,
    height INTEGER,
    issues VARCHAR[]
);
"""

# Version 7: likely label errors, per label: cleanlab's quality score and verdict from
# out-of-sample neighbour probabilities, and the class the neighbours suggest.
_V7 = """
CREATE TABLE label_quality (
    dataset_id INTEGER NOT NULL,
    label_id BIGINT NOT NULL,
    sample_id INTEGER NOT NULL,
    model VARCHAR NOT NULL,
    quality FLOAT NOT NULL,
    issue BOOLEAN NOT NULL,
    given VARCHAR NOT NULL,
    suggested VARCHAR NOT NULL,
    suggested_probability FLOAT NOT NULL
);
"""

# Version 8: objects. Box vectors live in `object_embeddings_<d>` (created with the model's
# first object run, keyed by label id); boxes that gave none, with why; per-box outlier and
# duplicate results; maps of objects (a point per box); cleanlab's object-detection label
# check against a prediction source, per image and per box (signal: swap, badloc, overlooked);
# the log of label edits (each row a change with the label before and after; a batch is what
# one request changed, undone and redone as one); lasso selections (kept across restarts)
# and saved views.
_V8 = """
CREATE TABLE object_embedding_errors (
    dataset_id INTEGER NOT NULL,
    label_id BIGINT NOT NULL,
    sample_id INTEGER NOT NULL,
    model VARCHAR NOT NULL,
    job_id VARCHAR,
    reason VARCHAR NOT NULL
);
CREATE TABLE object_scores (
    dataset_id INTEGER NOT NULL,
    label_id BIGINT NOT NULL,
    sample_id INTEGER NOT NULL,
    model VARCHAR NOT NULL,
    uniqueness FLOAT NOT NULL,
    outlier BOOLEAN NOT NULL,
    duplicate_group INTEGER
);
CREATE TABLE detection_quality (
    dataset_id INTEGER NOT NULL,
    sample_id INTEGER NOT NULL,
    source VARCHAR NOT NULL,
    quality FLOAT NOT NULL,
    issue BOOLEAN NOT NULL
);
CREATE TABLE detection_boxes (
    dataset_id INTEGER NOT NULL,
    sample_id INTEGER NOT NULL,
    label_id BIGINT NOT NULL,
    source VARCHAR NOT NULL,
    signal VARCHAR NOT NULL,
    score FLOAT NOT NULL,
    issue BOOLEAN NOT NULL
);
CREATE TABLE label_edits (
    dataset_id INTEGER NOT NULL,
    batch INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    made_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    who VARCHAR,
    action VARCHAR NOT NULL,
    label_id BIGINT,
    sample_id INTEGER NOT NULL,
    before JSON,
    after JSON,
    state VARCHAR NOT NULL
);
CREATE TABLE selections (
    dataset_id INTEGER NOT NULL,
    token VARCHAR NOT NULL,
    ids INTEGER[] NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE views (
    dataset_id INTEGER NOT NULL,
    name VARCHAR NOT NULL,
    state JSON NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
ALTER TABLE maps ADD COLUMN objects BOOLEAN DEFAULT false;
ALTER TABLE map_points ADD COLUMN label_id BIGINT;
"""

# Version 9: sharpness as a person sees it (measured at a fixed scale; NULL where older).
_V9 = """
ALTER TABLE image_quality ADD COLUMN sharpness FLOAT;
"""

# Version 10: density clusters of a map's points (per point its cluster, NULL for noise), and
# each cluster's label, size and where it lies.
_V10 = """
ALTER TABLE map_points ADD COLUMN cluster INTEGER;
CREATE TABLE clusters (
    dataset_id INTEGER NOT NULL,
    map_id INTEGER NOT NULL,
    cluster INTEGER NOT NULL,
    label VARCHAR NOT NULL,
    size INTEGER NOT NULL,
    summary JSON NOT NULL
);
"""

MIGRATIONS: list[str] = [_V1, _V2, _V3, _V4, _V5, _V6, _V7, _V8, _V9, _V10]
