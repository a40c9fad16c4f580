"""One run's configuration, ``RunConfig``: every option, declared once.

Each option is a field of ``RunConfig`` whose metadata says the rest (see
``bulkrunner/config/options.py``); ``bulkrunner.config.job_file`` builds one from a job file and
the command line's flags.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bulkrunner.config import lead_options as leads
from bulkrunner.config import plan_options
from bulkrunner.config.environment import BASE_URL_ENV
from bulkrunner.config.keeping import KEEP, NO_STATE, STATE_DIR
from bulkrunner.config.notify_options import heartbeat_url, notify_codes, notify_url
from bulkrunner.config.options import (
    CHECKING,
    CONNECTING,
    DIAGNOSING,
    DOING,
    EVERY,
    EXPORTING,
    READING,
    SENDING,
    as_campaign_status,
    as_client_id,
    as_optional_path,
    as_path,
    as_rates,
    choice,
    declared,
    names,
    option,
    optional_path,
    rate_argument,
    seconds,
    secret_url_variable,
    switch,
    toggle,
    whole,
)
from bulkrunner.config.paths import (
    DEFAULT_EXPORT,
    DEFAULT_REPORT,
    EXPORT_FORMATS,
    INPUT_FORMATS,
    REPORT_FORMATS,
    STANDARD_STREAM,
    or_list,
)
from bulkrunner.errors import ExitCode
from bulkrunner.limits.rates import DEFAULT_GUARD, DEFAULT_RATES
from bulkrunner.model import Rate
from bulkrunner.operations import NAMES as OPERATIONS
from bulkrunner.operations.fields import CAMPAIGN_STATUSES, ScheduleShape, Vocabulary

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (`--help` needs none)
if TYPE_CHECKING:
    from pathlib import Path

    from bulkrunner.operations.base import Operation, Wire

DEFAULT_BASE_URL = "https://server.smartlead.ai/api/v1"

MAX_CONCURRENCY = 1000  # more connections at once only run out of file descriptors


@dataclass(frozen=True, slots=True)
class RunConfig:
    """One run's configuration. Each field with ``metadata=option(...)`` is an option, declared
    there once; the last three are derived (a docstring also spares the dataclass from working
    out its signature for one at every start)."""

    input: Path = field(
        metadata=option(
            f"the {or_list(INPUT_FORMATS)} file of settings ({STANDARD_STREAM}: standard input, "
            "kept as reports/stdin-<hash>)",
            CHECKING,
            accepts=(str,),
            metavar="PATH",
            convert=as_path,
            path=True,
        )
    )
    operation: str = field(
        default="settings",
        metadata=option(
            f"what the rows change: {or_list(OPERATIONS)} (default {{default}})",
            EVERY | EXPORTING,
            accepts=(str,),
            choices=OPERATIONS,
        ),
    )
    vocabulary: Vocabulary = field(
        default=Vocabulary.DOCUMENTED,
        metadata=choice(
            f"enum names to send: {or_list(tuple(Vocabulary))} (default {{default}})",
            EVERY | EXPORTING,
            Vocabulary,
        ),
    )
    schedule_shape: ScheduleShape = field(
        default=ScheduleShape.NESTED,
        metadata=choice(
            f"wire shape of schedule requests: {ScheduleShape.described()} (default {{default}})",
            READING,
            ScheduleShape,
        ),
    )
    report: Path | None = optional_path(
        f"results file: {or_list(REPORT_FORMATS)} (default {DEFAULT_REPORT})",
        READING,
    )
    keep_columns: tuple[str, ...] = field(
        default=(),
        metadata=names(
            "columns of your own (notes, client...) the input may have, comma-separated: "
            "carried into the report as they are, never sent, never checked",
            CHECKING,
        ),
    )
    accounts: Path | None = optional_path(
        "a TOML file of SmartLead accounts (each: the variable holding its key, its limits, "
        "its base URL); the input's account column picks one per row",
        EVERY | DIAGNOSING,
        "FILE",
    )
    base_url: str = field(
        default=DEFAULT_BASE_URL,
        metadata=option(
            f"API base URL (default: ${BASE_URL_ENV}, else SmartLead's)",
            CONNECTING,
            accepts=(str,),
            metavar="URL",
        ),
    )
    rates: tuple[Rate, ...] = field(
        default=DEFAULT_RATES,
        metadata=option(
            "at most N requests in any SECONDS, repeatable: each replaces the default window of "
            "its SECONDS, the others hold (above SmartLead's: a warning) (default {default})",
            CONNECTING,
            key="rate",
            accepts=(list, str),
            form="append",
            metavar="N/SECONDS",
            parse=rate_argument,
            convert=as_rates,
        ),
    )
    concurrency: int = field(
        default=4,
        metadata=whole(
            f"parallel requests (default {{default}}, at most {MAX_CONCURRENCY})",
            READING | EXPORTING,
        ),
    )
    max_attempts: int = field(
        default=6,
        metadata=whole(
            "tries per row before it is failed (default {default})",
            CONNECTING,
        ),
    )
    timeout: float = field(
        default=30.0,
        metadata=seconds(
            "per-request timeout (default {default})",
            CONNECTING,
        ),
    )
    outage_timeout: float = field(
        default=600.0,
        metadata=seconds(
            f"abort (exit {ExitCode.ABORTED:d}: {ExitCode.ABORTED.brief}) when only retryable "
            "errors came back for this long, counting the waits between tries (default {default})",
            CONNECTING,
        ),
    )
    max_wait: float = field(
        default=300.0,
        metadata=seconds(
            "the longest single wait a server may ask for (Retry-After, X-RateLimit-Reset, a "
            "lower X-RateLimit-Limit); asked for longer, the run stops "
            f"(exit {ExitCode.ABORTED:d}: {ExitCode.ABORTED.brief}) (default {{default}})",
            CONNECTING,
        ),
    )
    grace: float = field(
        default=5.0,
        metadata=seconds(
            "after Ctrl-C or SIGTERM, how long requests in flight get to finish "
            "(default {default})",
            SENDING,
        ),
    )
    guard: float = field(
        default=DEFAULT_GUARD,
        metadata=seconds(
            "the least added to every rate window against network jitter; more is learned "
            "from round-trip times (default {default})",
            CONNECTING,
        ),
    )
    dry_run: bool = field(
        default=False,
        metadata=toggle(
            "check, show what would be sent, send nothing (rollback: a plan, reading the account)",
            SENDING,
        ),
    )
    simulate: bool = field(
        default=False,
        metadata=toggle(
            "run against the embedded SmartLead simulator (with injected faults), whose account "
            "is kept between commands (`bulkrunner simulate --reset` starts it afresh)",
            CONNECTING,
        ),
    )
    skip_unchanged: bool = field(
        default=True,
        metadata=toggle(
            "read the current settings first and do not send rows that change nothing "
            "(default on; --no-skip-unchanged sends every row)",
            READING,
        ),
    )
    state_dir: Path | None = STATE_DIR  # (the options of what is kept: config/keeping)
    no_state: bool = NO_STATE
    keep: int | None = KEEP
    verify: bool = field(
        default=False,
        metadata=toggle(
            "read each changed campaign back: rows that differ are 'mismatch', unread 'unverified'",
            READING,
        ),
    )
    no_backup: bool = field(
        default=False,
        metadata=switch(
            "write no backup, and send rows even when their campaign's current settings "
            "cannot be read (by default such rows fail unsent); the run cannot be rolled back",
            READING,
        ),
    )
    allow_stop: bool = field(
        default=False,
        metadata=switch(
            "allow rows that set status STOPPED, which cannot be undone",
            EVERY - {"rollback"},  # (validate: such rows are valid with it; a rollback stops none)
        ),
    )
    # allow_stop is the narrower consent, to stops alone
    allow_irreversible: bool = field(
        default=False,
        metadata=switch(
            "allow changes a rollback cannot undo: setting a field that has no value now (null "
            "or not shown: no API call takes a value away), stopping campaigns (as --allow-stop),"
            " unsubscribing or removing leads; without it such rows fail unsent or are invalid",
            EVERY,  # validate: it decides whether STOPPED is valid, as --allow-stop does
        ),
    )
    quiet: bool = field(
        default=False,
        metadata=switch(
            "errors and the final summary only: no progress, no log lines below errors",
            CONNECTING,
            flags=("-q", "--quiet"),
        ),
    )
    progress_interval: float = field(
        default=10.0,
        metadata=seconds(
            "seconds between progress lines when there is no bar (default {default})",
            SENDING,
        ),
    )
    log_format: str = field(
        default="text",
        metadata=choice(
            "json: every line on stdout and stderr is one JSON object, for log shippers "
            "(default {default})",
            CONNECTING,
            ("text", "json"),
        ),
    )
    notify: str | None = notify_url()
    notify_env: str | None = secret_url_variable("--notify", "the webhook URL", SENDING)
    notify_on: tuple[ExitCode, ...] = notify_codes()
    heartbeat: str | None = heartbeat_url()
    heartbeat_env: str | None = secret_url_variable("--heartbeat", "the URL", DOING)
    verbose: bool = field(
        default=False,
        metadata=switch(
            "log every request and answer",
            CONNECTING,
            flags=("-v", "--verbose"),
        ),
    )
    resume: bool = field(
        default=False,
        metadata=option(
            "continue an interrupted run: rows its journal has as succeeded are not sent again "
            "(without --report: the newest unfinished run of this same input)",
            SENDING,
            accepts=(bool, str),  # true, false or "auto"
            form="switch",
        ),
    )
    fresh: bool = field(
        default=False,
        metadata=switch(
            "discard an interrupted run's journal for this report and start over",
            SENDING,
            in_job_file=False,
        ),
    )
    # export's: which campaigns to read, and where their state goes (flags only)
    client_id: int | None = field(
        default=None,
        metadata=option(
            "export only the campaigns of this agency client (GET /campaigns/?client_id=N)",
            EXPORTING,
            metavar="N",
            parse=int,
            convert=as_client_id,
        ),
    )
    status: str | None = field(
        default=None,
        metadata=option(
            f"export only the campaigns with this status: {', '.join(CAMPAIGN_STATUSES)} "
            "(any case)",
            EXPORTING,
            metavar="STATUS",
            convert=as_campaign_status,
        ),
    )
    output: Path | None = field(
        default=None,
        metadata=option(
            f"the export file, {or_list(EXPORT_FORMATS)}: the operation's input format "
            f"({STANDARD_STREAM}: CSV on standard output, every other line on standard error) "
            f"(default {DEFAULT_EXPORT})",
            EXPORTING,
            metavar="PATH",
            convert=as_optional_path,
        ),
    )
    force: bool = plan_options.FORCE  # saved plans and drift: see config/plan_options
    out: Path | None = plan_options.OUT
    exit_code: bool = plan_options.EXIT_CODE
    plan: Path | None = plan_options.PLAN
    campaign_ids: tuple[int, ...] = leads.export_campaigns()
    # leads (config/lead_options): the upload's settings booleans, its size, a suppression list
    ignore_global_block_list: bool = leads.upload_setting("ignore_global_block_list")
    ignore_unsubscribe_list: bool = leads.upload_setting("ignore_unsubscribe_list")
    ignore_duplicate_leads_in_other_campaign: bool = leads.upload_setting(
        "ignore_duplicate_leads_in_other_campaign"
    )
    leads_per_request: int = leads.leads_per_request()
    suppress: Path | None = leads.suppression_list()
    auto_resume: bool = False  # job file resume = "auto": continue an unfinished run, if any
    report_template: str | None = None  # the report as given, if it has {timestamp} or {date}
    command: tuple[str, ...] = ()  # the command line that started this, for hints to paste


OPTIONS = declared(RunConfig)
"""Every option, in the order of the help."""


def for_config(config: RunConfig) -> tuple[Operation, Wire]:
    """The operation a run applies, and the options that shape its requests."""
    from bulkrunner.operations import operation
    from bulkrunner.operations.base import Wire

    allow_stop = config.allow_stop or config.allow_irreversible  # the wider consent includes it
    wire = Wire(
        config.vocabulary,
        config.schedule_shape,
        allow_stop,
        allow_irreversible=config.allow_irreversible,
        **leads.lead_wire(config),
    )
    return operation(config.operation), wire
