"""Who may call what: the one role table of the mesh, enforced by the server interceptor.

Each RPC names the roles any one of which admits a caller (`admin` always does). Reading roles are
implied by the working roles (an author, operator, reviewer or publisher also reads their tenant's data);
the auditor reads the ledger and answers access requests (what the stores hold about one data subject),
and `admin` erases and manages. Finer rules that depend on the record
(an await step's roles, four-eyes, who approved an item) stay with the services that hold the record.
"""

from collections.abc import Iterable

from matcha.runtime.errors import PermissionDenied

ANALYST = "analyst"  # reads tenant data, runs models on it
AUTHOR = "author"  # registers plans, prompt templates and brand voices, submits drafts
OPERATOR = "operator"  # starts and cancels runs, ingests and writes tenant data
REVIEWER = "reviewer"  # claims and decides review items
PUBLISHER = "publisher"  # publishes approved items
AUDITOR = "auditor"  # reads and verifies the audit ledger, answers data-subject access requests
ADMIN = "admin"  # erases subjects, deletes collections and classifiers; admits everything
REVIEW_SERVICE = "review-service"  # the review service's own token, which signals runs

IMPLIED = {AUTHOR: (ANALYST,), OPERATOR: (ANALYST,), REVIEWER: (ANALYST,), PUBLISHER: (ANALYST,)}

# Any authenticated member of the tenant (the service checks more itself).
MEMBER: tuple[str, ...] = ()

_READ = (ANALYST,)
_WRITE = (OPERATOR,)
_MANAGE = (ADMIN,)
# What a store holds about one data subject, content included: an access request's answer.
_DESCRIBE_SUBJECT = (AUDITOR,)


def _service(name: str, **methods: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    return {f"/{name}/{method}": roles for method, roles in methods.items()}


ROLE_TABLE: dict[str, tuple[str, ...]] = {
    **_service(
        "matcha.conductor.v1.ConductorService",
        RegisterPlan=(AUTHOR,),
        GetPlan=_READ,
        ListPlans=_READ,
        ExportPlan=_READ,
        StartRun=(OPERATOR,),
        GetRun=_READ,
        ListRuns=_READ,
        WatchRun=_READ,
        CancelRun=(OPERATOR,),
        # The await step's roles (or the run's resume capability) decide, when the signal is consumed.
        Signal=MEMBER,
        ListAudit=(AUDITOR,),
        VerifyAudit=(AUDITOR,),
        EraseSubject=_MANAGE,
        GetDataMap=_DESCRIBE_SUBJECT,
        ListCapabilities=_READ,
        RevokePrincipal=_MANAGE,
        ReinstatePrincipal=_MANAGE,
        # A trigger starts runs as its creator: creating or deleting one is starting or cancelling runs.
        CreateAlertTrigger=(OPERATOR,),
        GetAlertTrigger=_READ,
        ListAlertTriggers=_READ,
        DeleteAlertTrigger=(OPERATOR,),
    ),
    **_service(
        "matcha.embedding.v1.EmbeddingService",
        Embed=_READ,
        CreateCollection=_WRITE,
        GetCollection=_READ,
        ListCollections=_READ,
        DeleteCollection=_MANAGE,
        Upsert=_WRITE,
        Search=_READ,
        ListDocuments=_READ,
        Delete=_WRITE,
        EraseSubject=_MANAGE,
        DescribeSubject=_DESCRIBE_SUBJECT,
    ),
    **_service(
        "matcha.classification.v1.ClassificationService",
        Classify=_READ,
        TrainClassifier=_WRITE,
        EvaluateClassifier=_READ,
        GetClassifier=_READ,
        ListClassifiers=_READ,
        DeleteClassifier=_MANAGE,
        DetectSignals=_READ,
        CreateWatch=_WRITE,
        GetWatch=_READ,
        ListWatches=_READ,
        DeleteWatch=_WRITE,
        IngestPosts=_WRITE,
        ListWatchReports=_READ,
        WatchAlerts=_READ,
        EraseSubject=_MANAGE,
        DescribeSubject=_DESCRIBE_SUBJECT,
    ),
    **_service(
        "matcha.generation.v1.GenerationService",
        Generate=_READ,
        GenerateStream=_READ,
        ListModels=_READ,
        CreatePromptTemplate=(AUTHOR, OPERATOR),
        GetPromptTemplate=_READ,
        ListPromptTemplates=_READ,
        LearnVoice=(AUTHOR, OPERATOR),
        GetVoiceProfile=_READ,
        ListVoiceProfiles=_READ,
        ScoreVoice=_READ,
        EraseSubject=_MANAGE,
        DescribeSubject=_DESCRIBE_SUBJECT,
    ),
    **_service(
        "matcha.segmentation.v1.SegmentationService",
        IngestCustomers=_WRITE,
        IngestTransactions=_WRITE,
        IngestItems=_WRITE,
        # The review service feeds campaign outcomes (clicks, conversions) on as behaviour.
        IngestEvents=(OPERATOR, REVIEW_SERVICE),
        # ... and unsubscriptions, which publications must honour from then on.
        Unsubscribe=(OPERATOR, REVIEW_SERVICE),
        GetCustomer=_READ,
        EraseSubject=_MANAGE,
        DescribeSubject=_DESCRIBE_SUBJECT,
        BuildSegmentation=_WRITE,
        GetSegmentation=_READ,
        ListSegmentations=_READ,
        ListSegmentMembers=_READ,
        Assign=_READ,
        WatchSegmentChanges=_READ,
        Recommend=_READ,
        CompareSegmentations=_READ,
        AttachPersona=_WRITE,
        DefineConditionSegment=_WRITE,
        GetConditionSegment=_READ,
        ListConditionSegmentMembers=_READ,
        StreamSegmentMembers=_READ,
    ),
    **_service(
        "matcha.segmentation.v1.SegmentationPartitionService",
        # A replica applies events on the one that owns their customers with the caller's token: as IngestEvents.
        ApplyEvents=(OPERATOR, REVIEW_SERVICE),
        ReevaluateCustomers=_WRITE,
    ),
    **_service(
        "matcha.review.v1.ReviewService",
        Submit=(AUTHOR, OPERATOR),
        List=_READ,
        Get=_READ,
        Claim=(REVIEWER,),
        Release=(REVIEWER,),
        Decide=(REVIEWER,),
        Revise=(AUTHOR, OPERATOR),
        Publish=(PUBLISHER,),
        # Queues failed deliveries again: run signals and publications alike, as whoever operates runs.
        Redeliver=(OPERATOR,),
        WatchEvents=_READ,
        EraseSubject=_MANAGE,
        DescribeSubject=_DESCRIBE_SUBJECT,
        CreateExperiment=(PUBLISHER,),
        AssignVariants=(PUBLISHER, OPERATOR),
        IngestOutcomes=_WRITE,
        ListExperiments=_READ,
        GetCampaignResults=_READ,
        PromoteVariant=(PUBLISHER,),
    ),
}

# A method missing from the table (one being added) is a read: never open to a principal without a role.
DEFAULT_ROLES = _READ


ERASURE_PURPOSE = "erasure"
ERASURE_METHOD = "EraseSubject"


def is_erasure(method: str, purpose: str, held: Iterable[str]) -> bool:
    """An admin's erasure call: it names a subject to forget and carries no data to protect, so a store takes it
    whatever its clearance (a store cleared below PERSONAL still holds what must be erased)."""
    return method.rsplit("/", 1)[-1] == ERASURE_METHOD and purpose == ERASURE_PURPOSE and ADMIN in frozenset(held)


def effective_roles(roles: Iterable[str]) -> frozenset[str]:
    held = frozenset(roles)
    return held.union(*(IMPLIED.get(role, ()) for role in held))


def required_roles(method: str) -> tuple[str, ...]:
    return ROLE_TABLE.get(method, DEFAULT_ROLES)


def authorize(method: str, roles: Iterable[str], subject: str) -> None:
    """Refuses the call unless the principal holds one of the roles the table names for `method`."""
    needed = required_roles(method)
    held = effective_roles(roles)
    if not needed or ADMIN in held or held.intersection(needed):
        return
    raise PermissionDenied(
        f"{method.rsplit('/', 1)[-1]} requires the role {' or '.join(needed)}",
        reason="MISSING_ROLE",
        metadata={"role": needed[0], "roles": ",".join(needed), "method": method, "subject": subject},
    )
