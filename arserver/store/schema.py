"""The database schema as SQLAlchemy Core tables; migrations in ``migrations/`` create it.

Times are :class:`~arserver.store.types.UTCDateTime`: stored as UTC, read back timezone-aware.
Public identifiers are random strings (no enumeration through URLs); ``assets.pk`` is an
integer key for the spatial index (SQLite R*Tree rows are integers).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

from arserver.store.types import UTCDateTime

metadata = MetaData()

tokens = Table(
    "tokens",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("role", String(20), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("revoked_at", UTCDateTime()),
    Column("expires_at", UTCDateTime()),  # None: until revoked
    Column("scope", String(140)),  # None: everything the role may; "asset:ID" or "layer:NAME"
)
Index("tokens_scope", tokens.c.scope)  # the resident tokens of a round

assets = Table(
    "assets",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("id", String(32), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("layer", String(100), nullable=False),
    Column("crs", String(100)),
    Column("origin", JSON),
    Column("heading", Float, nullable=False, default=0.0),
    Column("lifecycle", String(20), nullable=False, default="existing"),
    Column("public", Boolean, nullable=False, default=False),
    Column("status", String(20), nullable=False),
    Column("progress", Float, nullable=False, default=0.0),
    Column("stage", String(100)),
    Column("error", Text),
    Column("source_name", String(255)),
    Column("source_bytes", Integer),
    Column("summary", JSON),
    Column("west", Float),
    Column("south", Float),
    Column("east", Float),
    Column("north", Float),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)
Index("assets_layer", assets.c.layer)
# Not in this metadata, made by raw SQL in the migrations: the SQLite R*Tree asset_extents
# and, on PostgreSQL, the PostGIS column assets.extent with its index assets_extent.

jobs = Table(
    "jobs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("asset_id", String(32), ForeignKey("assets.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("status", String(20), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("worker", String(100)),
    Column("heartbeat_at", UTCDateTime()),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("started_at", UTCDateTime()),
    Column("finished_at", UTCDateTime()),
    Column("error", Text),
)
Index("jobs_status_created", jobs.c.status, jobs.c.created_at)

sensors = Table(
    "sensors",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("id", String(100), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("lon", Float),
    Column("lat", Float),
    Column("h", Float),
    Column("dev_eui", String(16), unique=True),
    Column("device_fields", JSON),
    Column("owner", String(200)),
    Column("purpose", String(500)),
    Column("asset_id", String(32)),
    Column("feature_id", String(100)),
    Column("placed_at", UTCDateTime()),
    Column("removed_at", UTCDateTime()),
    Column("created_at", UTCDateTime(), nullable=False),
    # The sensor register (owner's contact, chamber-of-commerce number, ...); ``public``: its
    # data is readable without a token (SensorThings API, register).
    Column("public", Boolean, nullable=False, default=False, server_default=false()),
    Column("contact", String(200)),
    Column("kvk", String(8)),
    Column("sensor_type", String(100)),
    Column("area", JSON),  # GeoJSON Polygon or MultiPolygon (WGS 84) a mobile sensor moves in
    Column("themes", JSON),  # list of strings
    Column("personal_data", Boolean, nullable=False, default=False, server_default=false()),
    Column("privacy_statement", String(500)),  # URL
    Column("legal_ground", String(30)),  # GDPR art. 6(1): consent, contract, ...
    Column("project", String(200)),
)

datastreams = Table(
    "datastreams",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("sensor_pk", Integer, ForeignKey("sensors.pk", ondelete="CASCADE"), nullable=False),
    Column("kind", String(50), nullable=False),
    Column("unit", String(30), nullable=False),
    UniqueConstraint("sensor_pk", "kind", name="datastreams_sensor_kind"),
)

#: One row per datastream kind ever registered: the SensorThings ObservedProperty and its id.
observed_properties = Table(
    "observed_properties",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(50), nullable=False, unique=True),
)

observations = Table(
    "observations",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column(
        "datastream_id", Integer, ForeignKey("datastreams.id", ondelete="CASCADE"), nullable=False
    ),
    Column("time", UTCDateTime(), nullable=False),
    Column("value", Float, nullable=False),
    Column("lon", Float),
    Column("lat", Float),
    Column("h", Float),
    Column("source_id", String(200)),
    Column("received_at", UTCDateTime(), nullable=False),
    UniqueConstraint("datastream_id", "time", name="observations_stream_time"),
)
Index("observations_time", observations.c.time)  # retention scans by age
Index(  # the expiry of positions reads only the rows that still have one
    "observations_positioned",
    observations.c.time,
    sqlite_where=observations.c.lon.is_not(None),
    postgresql_where=observations.c.lon.is_not(None),
)

observation_hours = Table(
    "observation_hours",
    metadata,
    Column(
        "datastream_id",
        Integer,
        ForeignKey("datastreams.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("start", UTCDateTime(), primary_key=True),  # UTC hour
    Column("count", BigInteger, nullable=False),
    Column("sum", Float, nullable=False),
    Column("min", Float, nullable=False),
    Column("max", Float, nullable=False),
)

# Counted in shards (a batch adds to one of them), so that concurrent writers do not queue
# behind each other's commit on one row; a cause's count is the sum of its shards.
ingest_counters = Table(
    "ingest_counters",
    metadata,
    Column("cause", String(50), primary_key=True),
    Column("shard", SmallInteger, primary_key=True),
    Column("count", BigInteger, nullable=False),
)

rules = Table(
    "rules",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("kind", String(50), nullable=False),
    Column("sensor_id", String(100)),
    Column("above", Boolean, nullable=False),
    Column("threshold", Float, nullable=False),
    Column("reset", Float, nullable=False),
    Column("window_s", Integer, nullable=False),
    Column("open_after_s", Integer, nullable=False),
    Column("resolve_after_s", Integer, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)
Index("rules_kind", rules.c.kind)

rule_states = Table(
    "rule_states",
    metadata,
    Column("rule_id", String(32), ForeignKey("rules.id", ondelete="CASCADE"), primary_key=True),
    Column("sensor_id", String(100), primary_key=True),
    Column("last_time", UTCDateTime(), nullable=False),
    Column("breach_since", UTCDateTime()),
    Column("clear_since", UTCDateTime()),
    Column("alert_id", String(32)),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("rule_id", String(32), ForeignKey("rules.id", ondelete="CASCADE"), nullable=False),
    Column("sensor_id", String(100), nullable=False),
    Column("kind", String(50), nullable=False),
    Column("status", String(20), nullable=False),
    Column("value", Float, nullable=False),
    Column("opened_at", UTCDateTime(), nullable=False),
    Column("acknowledged_at", UTCDateTime()),
    Column("acknowledged_by", String(200)),
    Column("resolved_at", UTCDateTime()),
)
Index("alerts_status", alerts.c.status, alerts.c.opened_at)

#: The audit log (BIO logging): append-only, each entry chained to the one before by its
#: ``hash`` (see arserver/store/audit.py). ``actor`` and ``actor_salt`` are cleared when the
#: person is erased; ``actor_digest`` (salted SHA-256 of the actor) stays, so the chain still
#: verifies while the entry can no longer be linked to anyone.
audit_entries = Table(
    "audit_entries",
    metadata,
    Column(
        "seq",
        BigInteger().with_variant(Integer, "sqlite"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("at", UTCDateTime(), nullable=False),
    Column("actor", String(200)),  # token id, "oidc:..." subject, "cli", "anonymous", ...
    Column("actor_salt", String(32)),
    Column("actor_digest", String(64), nullable=False),
    Column("action", String(200), nullable=False),  # "POST /api/v1/assets", "token create"
    Column("object", String(200)),
    Column("result", String(20), nullable=False),  # HTTP status, "ok" or "refused"
    Column("origin", String(64)),  # client network (/24, /48) or "local"
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)
Index("audit_entries_at", audit_entries.c.at)  # retention scans by age
Index("audit_entries_actor", audit_entries.c.actor)  # export and erasure by person

#: The audit chain's one row (``id`` 1): the newest entry (``last_seq``, ``last_hash``) and the
#: anchor the oldest kept entry follows (``anchor_seq``, ``anchor_hash``; moved by the purge).
#: With an audit key: the first entry hashed with it (``keyed_from``) and the row's HMAC
#: (``mac``). ``subject_salt`` salts the digests of privacy subjects when there is no key.
audit_chain = Table(
    "audit_chain",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("last_seq", BigInteger, nullable=False),
    Column("last_hash", String(64), nullable=False),
    Column("anchor_seq", BigInteger, nullable=False),
    Column("anchor_hash", String(64), nullable=False),
    Column("keyed_from", BigInteger),
    Column("mac", String(64)),
    Column("subject_salt", String(32), nullable=False),
)

#: The features of a published asset, by the id a client picks from its tileset's feature
#: metadata (its ``id`` property, else its ``name``, else its index in the conversion); the
#: position is the centre of the feature's bounding box (WGS 84 degrees, ellipsoidal metres).
#: Written with the asset's publication, removed with the asset.
asset_features = Table(
    "asset_features",
    metadata,
    Column("asset_id", String(32), ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True),
    Column("feature_id", String(200), primary_key=True),
    Column("lon", Float, nullable=False),
    Column("lat", Float, nullable=False),
    Column("h", Float, nullable=False),
)

#: Field inspections: findings recorded at a place or on an asset feature. ``created_by`` and
#: the history's ``actor`` are who did it (a token's name or an OpenID Connect subject id);
#: ``assignee`` a person or a team. ``asset_id`` is kept when the asset is deleted later.
inspections = Table(
    "inspections",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("category", String(50), nullable=False),
    Column("severity", String(20), nullable=False),
    Column("description", Text, nullable=False),
    Column("status", String(20), nullable=False),  # open | in_progress | resolved | rejected
    Column("lon", Float, nullable=False),
    Column("lat", Float, nullable=False),
    Column("h", Float),
    Column("asset_id", String(32)),
    Column("feature_id", String(200)),
    Column("sensor_ids", JSON, nullable=False),  # [sensor id, ...]
    Column("alert_ids", JSON, nullable=False),  # [alert id, ...]
    Column("assignee", String(200)),
    Column("created_by", String(200)),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("closed_at", UTCDateTime()),  # when it became resolved or rejected
)
Index("inspections_place", inspections.c.lat, inspections.c.lon)
Index("inspections_created", inspections.c.created_at, inspections.c.id)
Index("inspections_status", inspections.c.status)
Index("inspections_asset", inspections.c.asset_id)

#: One row per change of an inspection: ``change`` created | status | assigned | edited |
#: photo; the status before and after, the assignee after, and the note of whoever did it.
inspection_events = Table(
    "inspection_events",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column(
        "inspection_id",
        String(32),
        ForeignKey("inspections.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("at", UTCDateTime(), nullable=False),
    Column("actor", String(200)),
    Column("change", String(20), nullable=False),
    Column("from_status", String(20)),
    Column("to_status", String(20)),
    Column("assignee", String(200)),
    Column("note", Text),
)

#: Photos of an inspection, re-encoded without any metadata block (``data``), with a small
#: thumbnail; kept in the database so that a photo and its row are written in one transaction.
inspection_photos = Table(
    "inspection_photos",
    metadata,
    Column("id", String(32), primary_key=True),
    Column(
        "inspection_id",
        String(32),
        ForeignKey("inspections.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("content_type", String(30), nullable=False),
    Column("width", Integer, nullable=False),
    Column("height", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("thumbnail", LargeBinary, nullable=False),
    Column("created_by", String(200)),
    Column("created_at", UTCDateTime(), nullable=False),
)

#: Participation rounds (inspraak): who may react (``mode`` staff | public), where (``area``,
#: a GeoJSON Polygon or MultiPolygon in WGS 84, bounded by west..north), about which planned
#: assets, and when (``starts_at`` <= comment time < ``ends_at``). ``pseudonym_salt`` makes
#: the residents' pseudonyms of this round (other rounds have other salts).
rounds = Table(
    "rounds",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("title", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("privacy_notice", Text, nullable=False),
    Column("mode", String(10), nullable=False),
    Column("area", JSON, nullable=False),
    Column("west", Float, nullable=False),
    Column("south", Float, nullable=False),
    Column("east", Float, nullable=False),
    Column("north", Float, nullable=False),
    Column("asset_ids", JSON, nullable=False),  # [asset id, ...]
    Column("starts_at", UTCDateTime(), nullable=False),
    Column("ends_at", UTCDateTime(), nullable=False),
    Column("pseudonym_salt", String(32), nullable=False),
    Column("created_by", String(200)),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

#: Comments (annotations) at a place or on an asset feature, in threads (``thread_id`` the
#: first comment's id, ``reply_to`` the comment answered), optionally in a round.
#: ``author`` links the comment to a person (token id of a resident, a staff token's name, an
#: OpenID Connect subject id; NULL once erased or expired); ``author_name`` is what others see
#: (a resident's per-round pseudonym). ``status`` visible | hidden | erased; a hidden comment
#: keeps its text and ``moderation_reason``; ``response`` is the planners' answer.
comments = Table(
    "comments",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("round_id", String(32), ForeignKey("rounds.id", ondelete="CASCADE"), index=True),
    Column("thread_id", String(32), nullable=False, index=True),
    Column("reply_to", String(32)),
    Column("lon", Float, nullable=False),
    Column("lat", Float, nullable=False),
    Column("h", Float),
    Column("asset_id", String(32)),
    Column("feature_id", String(200)),
    Column("text", Text, nullable=False),
    Column("author", String(200)),
    Column("author_name", String(200), nullable=False),
    Column("author_kind", String(10), nullable=False),  # staff | resident
    Column("status", String(10), nullable=False),
    Column("moderation_reason", Text),
    Column("moderated_by", String(200)),
    Column("moderated_at", UTCDateTime()),
    Column("response", Text),
    Column("responded_by", String(200)),
    Column("responded_at", UTCDateTime()),
    Column("created_at", UTCDateTime(), nullable=False),
)
Index("comments_place", comments.c.lat, comments.c.lon)
Index("comments_author", comments.c.author)
Index("comments_created", comments.c.created_at, comments.c.id)
Index("comments_status", comments.c.status)

#: The moderation history of a comment, one row per act: ``action`` hidden | restored |
#: answered, by whom (``actor``, as records store people), when, and the reason or answer
#: given (``text``). The comment's own columns hold only the latest state.
comment_events = Table(
    "comment_events",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column(
        "comment_id",
        String(32),
        ForeignKey("comments.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("at", UTCDateTime(), nullable=False),
    Column("actor", String(200)),
    Column("action", String(10), nullable=False),
    Column("text", Text),
)

# Parking zones (``kind`` "zone": an area with bays) and car parks ("car_park": a counter of
# free spaces). ``lon``/``lat`` is where the place is shown (WGS 84); ``area`` the outer ring
# [[lon, lat], ...] when it has one; west..north its extent. ``bay_sensors`` lists a zone's bay
# sensors when they were named (None: the parking_bay sensors standing in its area).
parking_places = Table(
    "parking_places",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("id", String(100), nullable=False, unique=True),
    Column("kind", String(20), nullable=False),
    Column("name", String(200), nullable=False),
    Column("capacity", Integer),
    Column("lon", Float, nullable=False),
    Column("lat", Float, nullable=False),
    Column("area", JSON),
    Column("west", Float, nullable=False),
    Column("south", Float, nullable=False),
    Column("east", Float, nullable=False),
    Column("north", Float, nullable=False),
    Column("bay_sensors", JSON),
    Column("counter_sensor", String(100)),
    Column("source", String(20), nullable=False),
    Column("operator", String(200)),
    Column("is_open", Boolean),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)
Index("parking_places_counter", parking_places.c.counter_sensor)
Index(
    "parking_places_extent",
    parking_places.c.west,
    parking_places.c.east,
    parking_places.c.south,
    parking_places.c.north,
)

# The occupancy of a place each time it changed (bays known occupied / free, and unknown:
# silent or stuck bays, or the part of a zone's capacity no sensor covers).
parking_occupancy = Table(
    "parking_occupancy",
    metadata,
    Column(
        "place_pk",
        Integer,
        ForeignKey("parking_places.pk", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("time", UTCDateTime(), primary_key=True),
    Column("capacity", Float, nullable=False),
    Column("occupied", Float, nullable=False),
    Column("free", Float, nullable=False),
    Column("unknown", Float, nullable=False),
)

# Alignments of a headset's tracking frame to the world (POST /api/v1/align), kept for a while
# so that a live subscription can name one: the transformation only, never the point pairs.
alignments = Table(
    "alignments",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("owner", String(200), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("origin_lon", Float, nullable=False),
    Column("origin_lat", Float, nullable=False),
    Column("origin_h", Float, nullable=False),
    Column("matrix", JSON, nullable=False),
    Column("up", String(1), nullable=False),
    Column("rms_m", Float, nullable=False),
)
Index("alignments_owner", alignments.c.owner, alignments.c.created_at)
