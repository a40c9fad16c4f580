"""The state store's schema (``bulkrunner.records.store``), one step per version."""

from __future__ import annotations

# Each entry moves the schema one version forward (entry i makes version i + 1). A released
# entry is never edited: a change to the schema is a new entry.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        # An account as a limiter knows it: ``identity`` is folders.account_id (never the key);
        # ``reach``, the seconds of its requests kept (the widest window any limiter held on
        # it, plus its guard); ``paused_until``, when a 429's Retry-After lets requests go again.
        """CREATE TABLE accounts (
            id INTEGER PRIMARY KEY,
            identity TEXT NOT NULL UNIQUE,
            reach REAL NOT NULL DEFAULT 0,
            paused_until REAL NOT NULL DEFAULT 0
        )""",
        # The requests sent on an account, numbered in the order recorded, at times that never
        # decrease with their numbers (see budget): a row holds ``n`` requests recorded at
        # ``at``, numbered up to ``seq``. The N-th latest is found by its number.
        """CREATE TABLE requests (
            account INTEGER NOT NULL REFERENCES accounts (id),
            seq INTEGER NOT NULL,
            n INTEGER NOT NULL,
            at REAL NOT NULL,
            PRIMARY KEY (account, seq)
        ) WITHOUT ROWID""",
        # A run of any command; ``finished_at`` is NULL until it finishes (or forever, if it was
        # killed). ``accounts``: a JSON array of {"name", "account"} (the identity).
        """CREATE TABLE runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            command TEXT NOT NULL,
            operation TEXT,
            of_run INTEGER REFERENCES runs (id),
            input_path TEXT,
            input_sha256 TEXT,
            accounts TEXT NOT NULL,
            pid INTEGER,
            started_at REAL NOT NULL,
            finished_at REAL,
            counts TEXT,
            exit_code INTEGER,
            report_path TEXT,
            backup_path TEXT
        )""",
        "CREATE INDEX runs_by_start ON runs (started_at)",
        # A field of a campaign that a run changed; ``before`` and ``after`` are JSON.
        """CREATE TABLE changes (
            run INTEGER NOT NULL REFERENCES runs (id),
            at REAL NOT NULL,
            account INTEGER NOT NULL REFERENCES accounts (id),
            campaign INTEGER NOT NULL,
            field TEXT NOT NULL,
            before TEXT NOT NULL,
            after TEXT NOT NULL
        )""",
        "CREATE INDEX changes_by_campaign ON changes (campaign, at)",
        "CREATE INDEX changes_by_run ON changes (run)",
    ),
)
