"""Rollout v1alpha1: which pods to release, and how (a rolling update, canary steps or blue-green).

The strategy blocks are reused by Component (`spec.release`), so a release reads the same
whether it is written on a Rollout or on a Component.
"""

from __future__ import annotations

import datetime
import enum
from typing import Annotated, Literal

from pydantic import Field

from delivery.api.analysis import DryRuns, JobMetadata, Retentions, WebHeader
from delivery.api.common import (
    Boolean,
    Count,
    Duration,
    FreeForm,
    Integer,
    IntOrPercent,
    Key,
    KeyedBy,
    Labels,
    Model,
    ObjectName,
    ObservedStatus,
    Resource,
    SecondsOrDuration,
    ServiceName,
    ShardName,
    Text,
    Weight,
)
from delivery.api.definition import AGE, DELIVERY_GROUP, Column, CustomResource, Version
from delivery.api.rules import (
    Rule,
    at_least_one,
    differ,
    exactly_one,
    int_or_percent,
    requires,
    seconds_or_duration,
)

ANALYSIS_HISTORY_LIMIT = 10
"""How many analysis results a Rollout's status keeps: enough to explain the last release."""
MEASUREMENT_HISTORY_LIMIT = 5
"""How many measurements of each metric an analysis result keeps (its counters keep them all),
unless a `measurementRetention` says otherwise."""
MEASUREMENT_RETENTION_LIMIT = 100
"""The most measurements of one metric a `measurementRetention` keeps: the status's bound."""


class Phase(enum.StrEnum):
    HEALTHY = "Healthy"  # the desired revision is stable and fully available
    PROGRESSING = "Progressing"  # moving toward the new revision
    PAUSED = "Paused"  # waiting for a person or a timed pause
    DEGRADED = "Degraded"  # no progress within progressDeadlineSeconds
    ABORTED = "Aborted"  # rolled back to the stable revision; waits for a retry or a new revision


class MachineState(enum.StrEnum):
    """The Rollout state machine's states (delivery.machine), as the status records them."""

    HEALTHY = "healthy"
    PROGRESSING = "progressing"
    PAUSED = "paused"
    ANALYSING = "analysing"
    PROMOTING = "promoting"
    ABORTING = "aborting"
    ABORTED = "aborted"
    DEGRADED = "degraded"


class StrategyName(enum.StrEnum):
    """The keys of a strategy block, also how a Component's `release` names one."""

    ROLLING = "rolling"
    CANARY = "canary"
    BLUE_GREEN = "blueGreen"


class AnalysisPhase(enum.StrEnum):
    RUNNING = "Running"
    SUCCESSFUL = "Successful"
    FAILED = "Failed"
    INCONCLUSIVE = "Inconclusive"
    ERROR = "Error"


class AnalysisKind(enum.StrEnum):
    """Where in a release an analysis runs."""

    STEP = "Step"  # a canary step: the step waits for it
    BACKGROUND = "Background"  # beside the canary steps or the rolling update
    PRE_PROMOTION = "PrePromotion"  # blue-green, before the active Service switches
    POST_PROMOTION = "PostPromotion"  # blue-green, after the switch, while the old revision still runs
    EXPERIMENT = "Experiment"  # a canary experiment step, beside its ReplicaSets


class WorkloadKind(enum.StrEnum):
    DEPLOYMENT = "Deployment"


class SelectorOperator(enum.StrEnum):
    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


class SelectorRequirement(Model):
    key: Annotated[str, Field(min_length=1, max_length=317)]
    operator: SelectorOperator
    values: Annotated[list[Annotated[str, Field(max_length=63)]], Field(max_length=64)] | None = None


class LabelSelector(Model):
    """Which pods belong to the Rollout, as in a Deployment."""

    match_labels: Labels | None = None
    match_expressions: Annotated[list[SelectorRequirement], Field(max_length=16)] | None = None

    rules = (at_least_one("matchLabels", "matchExpressions"),)


class ScaleDown(enum.StrEnum):
    """What happens to the Deployment a workloadRef names, as Argo Rollouts' `workloadRef.scaleDown`."""

    NEVER = "never"  # left as it is
    ON_SUCCESS = "onsuccess"  # to zero once the Rollout is Healthy
    PROGRESSIVELY = "progressively"  # down as the Rollout's pods become ready, to zero once Healthy


class WorkloadRef(Model):
    """An existing workload whose pod template the Rollout takes over."""

    api_version: Literal["apps/v1"] = "apps/v1"
    kind: WorkloadKind = WorkloadKind.DEPLOYMENT
    name: ObjectName
    scale_down: ScaleDown | None = None
    """What happens to the Deployment; unset: onsuccess (Argo's unset is never: here a Deployment
    handed over stops running beside the Rollout unless `never` says to keep it)."""


class ComponentRef(Model):
    """A Component in the same namespace whose rendered workload the Rollout releases."""

    name: ObjectName


class TemplateRef(Model):
    template_name: ObjectName
    """An AnalysisTemplate in the Rollout's namespace, or a ClusterAnalysisTemplate."""
    cluster_scope: Boolean = False
    """Look the name up among ClusterAnalysisTemplates."""


class PodTemplateHash(enum.StrEnum):
    STABLE = "Stable"
    LATEST = "Latest"


class FieldRef(Model):
    field_path: Annotated[str, Field(min_length=1, max_length=1024)]
    """A field of this Rollout: `metadata.labels['app']`, `spec.template.metadata.labels.version`,
    `status.stableRevision`; it must hold a string, number or boolean."""


class ArgumentValueFrom(Model):
    pod_template_hash_value: PodTemplateHash | None = None
    """The pod-template-hash of the stable revision or of the one being released (`Latest`)."""
    field_ref: FieldRef | None = None

    rules = (exactly_one("podTemplateHashValue", "fieldRef"),)


class AnalysisArgument(Model):
    name: Key
    value: Annotated[str, Field(max_length=4096)] | None = None
    value_from: ArgumentValueFrom | None = None
    """The value from this Rollout, as in Argo Rollouts."""

    rules = (exactly_one("value", "valueFrom"),)


class AnalysisRunMetadata(JobMetadata):
    """Labels and annotations for what an analysis creates. There is no AnalysisRun object (the
    analysis lives in the Rollout's status): they go on the Jobs of `job` metrics."""


class RolloutAnalysis(Model):
    """Which analysis templates judge this release, and the values of their arguments."""

    templates: Annotated[list[TemplateRef], Field(min_length=1, max_length=8)]
    args: Annotated[list[AnalysisArgument], KeyedBy("name"), Field(max_length=32)] | None = None
    dry_run: DryRuns | None = None
    """Metrics of the templates in dry-run mode (beside those the templates name)."""
    measurement_retention: Retentions | None = None
    """Measurements kept per metric; these win over the templates' for the same metricName."""
    analysis_run_metadata: AnalysisRunMetadata | None = None


class BackgroundAnalysis(RolloutAnalysis):
    """Analysis that runs beside the canary steps and aborts the release when it fails."""

    starting_step: Count | None = None
    """The step index from which the analysis runs; unset: from the first step."""


class Rolling(Model):
    """A Deployment-style rolling update, within a surge and an unavailability budget."""

    max_surge: IntOrPercent = "25%"
    """Pods above the desired replicas during the update."""
    max_unavailable: IntOrPercent = "25%"
    """Pods below the desired replicas during the update."""
    analysis: BackgroundAnalysis | None = None

    rules = (
        int_or_percent("maxSurge"),
        int_or_percent("maxUnavailable"),
        Rule(
            cel=("!(string(self.maxSurge) in ['0', '0%'] && string(self.maxUnavailable) in ['0', '0%'])"),
            message="maxSurge and maxUnavailable must not both be zero: nothing could move",
            holds=lambda wire: (
                not (
                    str(wire.get("maxSurge")) in {"0", "0%"}
                    and str(wire.get("maxUnavailable")) in {"0", "0%"}
                )
            ),
        ),
    )


class Pause(Model):
    duration: SecondsOrDuration | None = None
    """How long to wait: seconds (`30`) or a duration (`30s`, `5m`); unset: wait until someone
    promotes the Rollout."""

    rules = (seconds_or_duration("duration"),)


class SetCanaryScale(Model):
    """The canary's size apart from its traffic weight (exactly one of the three)."""

    replicas: Count | None = None
    weight: Weight | None = None
    """A percentage of spec.replicas."""
    match_traffic_weight: Literal[True] | None = None
    """Back to sizing the canary by its traffic weight."""

    rules = (exactly_one("replicas", "weight", "matchTrafficWeight"),)


class SpecRef(enum.StrEnum):
    """Which revision's pod template an experiment's ReplicaSet runs."""

    STABLE = "stable"
    CANARY = "canary"


class ExperimentPodMetadata(Model):
    """Labels and annotations added to an experiment ReplicaSet's pods (the labels to its selector too)."""

    labels: Labels | None = None
    annotations: Annotated[dict[str, Annotated[str, Field(max_length=4096)]], Field(max_length=64)] | None = (
        None
    )


class ExperimentService(Model):
    name: ServiceName | None = None


class ExperimentTemplate(Model):
    """A ReplicaSet of the experiment, from the stable or the canary revision's pod template, as in
    Argo Rollouts. Its pods carry their own pod-template-hash (not the revision's), so no Service of
    the Rollout selects them and queries can tell them apart (`{{templates.NAME.podTemplateHash}}`)."""

    name: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")]
    spec_ref: SpecRef
    replicas: Count = 1
    metadata: ExperimentPodMetadata | None = None
    selector: LabelSelector | None = None
    """The ReplicaSet's selector; unset: the Rollout's (plus `metadata.labels` and the pod-template-hash)."""
    weight: Weight | None = None
    """Argo's share of traffic for the template's pods through a traffic router: refused here (Argo
    offers it for SMI, ALB and Istio, none of which this controller routes)."""
    service: ExperimentService | None = None
    """A Service selecting the template's pods, with their containers' ports (named as the ReplicaSet
    unless `name` says), made with the ReplicaSet and deleted with it, as Argo's."""

    rules = (
        Rule(
            cel="!has(self.weight)",
            message="experiment template weight is not supported: no router here splits traffic to "
            "experiment pods (Argo offers it for SMI, ALB and Istio only); leave weight out",
            holds=lambda wire: "weight" not in wire,
            field_path=".weight",
        ),
    )


class ExperimentAnalysis(Model):
    """An analysis of the experiment's ReplicaSets, started once they are all available."""

    name: Key
    template_name: ObjectName
    cluster_scope: Boolean = False
    args: Annotated[list[AnalysisArgument], KeyedBy("name"), Field(max_length=32)] | None = None
    """Values may name the experiment's ReplicaSets: `{{templates.NAME.podTemplateHash}}`,
    `{{templates.NAME.replicaset.name}}` (as in Argo Rollouts)."""
    required_for_completion: Boolean = False
    """The experiment ends (successfully) once every analysis so marked has passed, whatever the duration."""


class Experiment(Model):
    """ReplicaSets of the stable and canary pod templates side by side, with their own analyses, for a
    duration (Argo Rollouts' experiment step). A failed (or inconclusive) analysis ends the step as a
    step analysis would: the release aborts (or pauses). The ReplicaSets are deleted when it ends."""

    duration: SecondsOrDuration | None = None
    """From when every ReplicaSet is available; unset: until the requiredForCompletion analyses
    have passed (with none, until a person promotes), as in Argo Rollouts."""
    templates: Annotated[list[ExperimentTemplate], KeyedBy("name"), Field(min_length=1, max_length=8)]
    analyses: Annotated[list[ExperimentAnalysis], KeyedBy("name"), Field(max_length=8)] | None = None
    dry_run: DryRuns | None = None
    analysis_run_metadata: AnalysisRunMetadata | None = None
    scale_down_delay_seconds: Count | None = None
    """Accepted for Argo's manifests; the experiment's ReplicaSets go as soon as it ends (no traffic
    reaches them, so there is nothing to drain)."""

    rules = (seconds_or_duration("duration"),)


class CanaryStep(Model):
    set_weight: Weight | None = None
    """Send this percentage of traffic to the canary."""
    pause: Pause | None = None
    analysis: RolloutAnalysis | None = None
    """Hold the step until these templates have an outcome; a failure aborts the release."""
    set_canary_scale: SetCanaryScale | None = None
    experiment: Experiment | None = None
    """Run ReplicaSets of the stable and canary templates side by side with their own analyses."""

    rules = (exactly_one("setWeight", "pause", "analysis", "setCanaryScale", "experiment"),)


class PreferredAntiAffinity(Model):
    weight: Annotated[Integer, Field(ge=1, le=100)]
    """The scheduler's weight of keeping the new pods off the stable pods' nodes."""


class RequiredAntiAffinity(Model):
    """The new pods are never scheduled onto a node that runs a stable pod."""


class AntiAffinity(Model):
    """Pod anti-affinity between the new revision and the stable one (injected into the new
    ReplicaSet's pod template, by node), as Argo Rollouts injects it."""

    preferred_during_scheduling_ignored_during_execution: PreferredAntiAffinity | None = None
    required_during_scheduling_ignored_during_execution: RequiredAntiAffinity | None = None

    rules = (
        exactly_one(
            "preferredDuringSchedulingIgnoredDuringExecution",
            "requiredDuringSchedulingIgnoredDuringExecution",
        ),
    )


class PodMetadata(JobMetadata):
    """Labels and annotations a role's pods carry only while they hold the role (Argo Rollouts'
    ephemeral metadata): set on the ReplicaSet's pod template and on its running pods, and moved
    when the role moves (the canary promoted becomes the stable), without restarting a pod."""

    rules = (
        Rule(
            cel="!has(self.labels) || self.labels.all(k, !k.startsWith('delivery.luojilab.com/'))",
            message="labels under delivery.luojilab.com/ are the controller's own (they select the pods)",
            holds=lambda wire: (
                not any(key.startswith("delivery.luojilab.com/") for key in wire.get("labels") or {})
            ),
            field_path=".labels",
        ),
    )


class NginxRouting(Model):
    stable_ingress: ObjectName
    """The Ingress that serves the stable Service; a canary Ingress beside it carries the weight."""


class GatewayAPIRouting(Model):
    http_route: ObjectName
    """The HTTPRoute, in the Rollout's namespace, whose backend weights move."""


class TrafficRouting(Model):
    nginx: NginxRouting | None = None
    gateway_api: GatewayAPIRouting | None = Field(default=None, alias="gatewayAPI")

    rules = (exactly_one("nginx", "gatewayAPI"),)


class CanaryMatch(Model):
    """Requests that go to the canary whatever the weight: testers, internal users."""

    header: Annotated[str, Field(max_length=256, pattern=r"^[-A-Za-z0-9!#$%&'*+.^_`|~]+$")] | None = None
    header_value: Annotated[str, Field(max_length=1024)] | None = None
    """Unset: any request carrying the header."""
    cookie: Annotated[str, Field(max_length=256, pattern=r"^[-A-Za-z0-9!#$%&'*+.^_`|~]+$")] | None = None

    rules = (at_least_one("header", "cookie"), requires("headerValue", "header"))


class Canary(Model):
    """Steps that move traffic and replicas to the new revision a share at a time."""

    steps: Annotated[list[CanaryStep], Field(max_length=64)] | None = None
    """Unset or empty: as in Argo Rollouts, straight to the new revision (a rolling update)."""
    canary_service: ServiceName | None = None
    """The Service the controller points at the canary revision's pods."""
    stable_service: ServiceName | None = None
    """The Service the controller points at the stable revision's pods."""
    traffic_routing: TrafficRouting | None = None
    """Unset: the weight is approximated by the ratio of replicas."""
    match: CanaryMatch | None = None
    analysis: BackgroundAnalysis | None = None
    anti_affinity: AntiAffinity | None = None
    canary_metadata: PodMetadata | None = None
    """On the canary's pods while the release runs (until it is promoted or a newer one starts)."""
    stable_metadata: PodMetadata | None = None
    """On the stable revision's pods; moves to the canary's pods when they become the stable ones."""
    max_surge: IntOrPercent | None = None
    """A basic canary's pods above spec.replicas while its steps move pods, as in Argo Rollouts
    (unset with maxUnavailable set: 25%). Both unset: each step's canary surges at once and no pod
    is taken out of service (Argo's 25%/25% would let a quarter of the pods go unavailable)."""
    max_unavailable: IntOrPercent | None = None
    """A basic canary's pods below spec.replicas while its steps move pods (unset with maxSurge
    set: 25%). Ignored with trafficRouting, as in Argo: the stable keeps its full size there."""
    dynamic_stable_scale: Boolean | None = None
    """With trafficRouting (unset: false), the stable shrinks to the share of traffic it still
    takes as the canary's weight rises (fewer pods during a release), and grows back before
    traffic returns to it."""
    min_pods_per_replica_set: Count | None = None
    """With trafficRouting, a canary that has pods has at least this many (at most spec.replicas), for
    availability, unless a setCanaryScale step sets its replicas; ignored without, as in Argo."""
    scale_down_delay_revision_limit: Count | None = None
    """Old revisions that may keep their pods during the scale-down delay. At most one ever does
    here (the previous stable; older ones go as soon as no Service selects them), so only 0 changes
    anything: no old revision waits, the delay is skipped."""
    abort_scale_down_delay_seconds: Count | None = None
    """With trafficRouting, how long the canary keeps its pods after an abort took its traffic away
    (unset: 30). Ignored without trafficRouting, as in Argo Rollouts: a basic canary's traffic
    follows its pods, so there is no router to wait for."""
    scale_down_delay_seconds: Count | None = None
    """With trafficRouting, how long the old stable keeps its pods after promotion moved its traffic
    away, for the router's backends to follow (unset: 30). Ignored without trafficRouting, as in
    Argo Rollouts: a basic canary completes as soon as the old pods are gone."""

    rules = (
        requires("trafficRouting", "canaryService", "stableService"),
        requires("match", "trafficRouting"),
        differ("stableService", "canaryService"),
        int_or_percent("maxSurge"),
        int_or_percent("maxUnavailable"),
        Rule(
            cel="!has(self.dynamicStableScale) || !self.dynamicStableScale || has(self.trafficRouting)",
            message="dynamicStableScale requires trafficRouting: without it, pods are the weight already",
            holds=lambda wire: not wire.get("dynamicStableScale") or "trafficRouting" in wire,
            field_path=".dynamicStableScale",
        ),
        Rule(
            cel=(
                "!(has(self.maxSurge) && has(self.maxUnavailable) && string(self.maxSurge) in ['0', '0%']"
                " && string(self.maxUnavailable) in ['0', '0%'])"
            ),
            message="maxSurge and maxUnavailable must not both be zero: nothing could move",
            holds=lambda wire: (
                not (
                    str(wire.get("maxSurge")) in {"0", "0%"}
                    and str(wire.get("maxUnavailable")) in {"0", "0%"}
                )
            ),
        ),
    )


class BlueGreen(Model):
    """The new revision runs beside the stable one, then takes all traffic at once."""

    active_service: ServiceName
    """The Service production traffic reaches."""
    preview_service: ServiceName | None = None
    """A Service that reaches the new revision before promotion, for tests."""
    auto_promotion_enabled: Boolean = True
    """Promote as soon as the new revision is ready and the pre-promotion analysis passed."""
    auto_promotion_seconds: Count | None = None
    """Promote this long after the new revision became ready, instead of at once."""
    pre_promotion_analysis: RolloutAnalysis | None = None
    post_promotion_analysis: RolloutAnalysis | None = None
    scale_down_delay_seconds: Count = 30
    """How long the old revision keeps its pods after the switch, so a switch back is instant."""
    scale_down_delay_revision_limit: Count | None = None
    """Old revisions that may keep their pods during the scale-down delay: only 0 changes anything
    (at most the previous one ever waits), and skips the delay."""
    abort_scale_down_delay_seconds: Count | None = None
    """How long the new revision keeps its pods after an abort switched the preview back (unset:
    scaleDownDelaySeconds, so 30 unless that is set; Argo's unset is 30 whatever scaleDownDelaySeconds
    says). 0 scales it down at once (Argo's 0 keeps its pods: set a long delay for that)."""
    preview_replica_count: Count | None = None
    """The new revision's size before promotion; unset: spec.replicas."""
    anti_affinity: AntiAffinity | None = None
    preview_metadata: PodMetadata | None = None
    """On the new revision's pods until they are promoted."""
    active_metadata: PodMetadata | None = None
    """On the pods the active Service reaches; moves to the new revision's pods at promotion."""

    rules = (
        differ("previewService", "activeService"),
        Rule(
            cel="!has(self.autoPromotionSeconds) || self.autoPromotionEnabled",
            message="autoPromotionSeconds has no effect when autoPromotionEnabled is false",
            holds=lambda wire: "autoPromotionSeconds" not in wire or bool(wire["autoPromotionEnabled"]),
            field_path=".autoPromotionSeconds",
        ),
    )


class Strategy(Model):
    rolling: Rolling | None = None
    canary: Canary | None = None
    blue_green: BlueGreen | None = None

    rules = (exactly_one(*StrategyName),)


class HookType(enum.StrEnum):
    """When a release calls a hook, and what its answer means (docs/gates.md)."""

    CONFIRM_ROLLOUT = "confirm-rollout"  # a gate before the release starts: held until yes
    PRE_ROLLOUT = "pre-rollout"  # once before traffic moves: a no aborts the release
    ROLLOUT = "rollout"  # every interval while the release runs: a no aborts it
    CONFIRM_TRAFFIC_INCREASE = "confirm-traffic-increase"  # a gate before each weight increase
    CONFIRM_PROMOTION = "confirm-promotion"  # a gate before the automatic promotion
    POST_ROLLOUT = "post-rollout"  # once after the release completed or rolled back; told, not asked
    ROLLBACK = "rollback"  # every interval while the release runs: a yes aborts it
    EVENT = "event"  # every transition; told, not asked


class Hook(Model):
    """An HTTP endpoint a release POSTs to (the Rollout, revision, step and phase as JSON), as
    Flagger's webhooks: a 2xx answer is a yes, any other answer (or none in time) a no."""

    name: Key
    type: HookType
    url: Annotated[str, Field(min_length=1, max_length=2048, pattern=r"^https?://.+$")]
    timeout: Duration = "10s"
    """The whole request, answer included, of one attempt."""
    retries: Annotated[Integer, Field(ge=0, le=10)] = 0
    """Attempts after the first when there is no answer, or a 408, 429 or 5xx one."""
    interval: Duration = "10s"
    """How often a gate that said no, or a rollout or rollback hook, is asked again."""
    headers: Annotated[list[WebHeader], Field(max_length=32)] | None = None
    """Values from Secrets with the same consent as analysis (the analysis-secret label)."""
    metadata: Annotated[dict[str, Annotated[str, Field(max_length=4096)]], Field(max_length=32)] | None = None
    """Passed as they are in the body's `metadata` (Flagger's load tester reads its `cmd` there)."""


class RolloutSpec(Model):
    replicas: Count = 1
    selector: LabelSelector | None = None
    """Required with `template`; with a workloadRef or componentRef the workload's selector is used."""
    template: FreeForm | None = None
    """A pod template, as in a Deployment."""
    workload_ref: WorkloadRef | None = None
    component_ref: ComponentRef | None = None
    revision_history_limit: Count = 10
    """Old ReplicaSets kept (scaled to zero) for a rollback."""
    progress_deadline_seconds: Annotated[Integer, Field(ge=1, le=2**31 - 1)] = 600
    """A step that makes no progress for this long marks the Rollout Degraded."""
    progress_deadline_abort: Boolean | None = None
    """Abort the release when the progress deadline passes, instead of only marking it Degraded
    (unset: false)."""
    min_ready_seconds: Count | None = None
    """How long a new pod must be ready before it counts as available (set on each ReplicaSet, as a
    Deployment's): steps, promotion and the scale-down of old pods wait for available pods."""
    restart_at: datetime.datetime | None = None
    """Replace every pod made before this moment, a few at a time, without a new revision (Argo
    Rollouts' field; `kubectl delivery restart` sets it to now). A moment to come is waited for."""
    strategy: Strategy
    hooks: Annotated[list[Hook], KeyedBy("name"), Field(max_length=16)] | None = None
    """Gates and hooks of each release (canary and blue-green): see docs/gates.md."""

    rules = (
        exactly_one("template", "workloadRef", "componentRef"),
        requires("template", "selector"),
        Rule(
            cel="!has(self.hooks) || !has(self.strategy.rolling)",
            message="hooks need a canary or blueGreen strategy: a rolling update has no point to hold at",
            holds=lambda wire: "hooks" not in wire or "rolling" not in wire["strategy"],
            field_path=".hooks",
        ),
    )


class Measurement(Model):
    """One measurement of one metric."""

    phase: AnalysisPhase
    value: Annotated[str, Field(max_length=256)] | None = None
    """The provider's result as JSON, shortened."""
    message: Text | None = None
    finished_at: datetime.datetime


class MetricResult(Model):
    """A metric's measurements so far. The counters are what the limits are checked against, so
    a controller that restarts carries on with the same count instead of starting over."""

    name: Key
    phase: AnalysisPhase
    message: Text | None = None
    count: Count = 0
    """Measurements taken, errors apart (an error is retried, not counted)."""
    successful: Count = 0
    failed: Count = 0
    inconclusive: Count = 0
    error: Count = 0
    consecutive_error: Count = 0
    consecutive_success: Count = 0
    dry_run: Boolean | None = None
    """The metric runs in dry-run mode: its outcome does not count for the analysis."""
    measurements: Annotated[list[Measurement], Field(max_length=MEASUREMENT_RETENTION_LIMIT)] | None = None
    """The latest measurements, newest last."""


class AnalysisRecord(Model):
    """The outcome of one analysis of one revision."""

    name: Annotated[str, Field(max_length=600)]
    """The analysis templates, comma-separated."""
    kind: AnalysisKind = AnalysisKind.STEP
    revision: Annotated[str, Field(max_length=63)]
    step_index: Count | None = None
    """The canary step that ran it; unset for background and blue-green analysis."""
    analysis: Key | None = None
    """The name of an experiment step's analysis (`analyses[].name`)."""
    phase: AnalysisPhase
    message: Text | None = None
    started_at: datetime.datetime | None = None
    finished_at: datetime.datetime | None = None
    metrics: Annotated[list[MetricResult], Field(max_length=128)] | None = None


class Weights(Model):
    canary: Weight = 0
    stable: Weight = 100


class OpenedBy(enum.StrEnum):
    HOOK = "Hook"  # the hook answered 2xx
    PERSON = "Person"  # the open-gate annotation (`kubectl delivery gate open`)


class GateMark(Model):
    """A gate of the release: a hook, at a canary step for confirm-traffic-increase."""

    name: Key
    step_index: Count | None = None


class OpenedGate(GateMark):
    """A gate (or pre-rollout check) this revision passed: not asked again, even after a restart."""

    by: OpenedBy


class WaitingGate(GateMark):
    """A gate the release is held at, and its last answer."""

    message: Text | None = None
    """Unset: not answered yet."""


class GatesStatus(Model):
    """The gates of the release of `revision`: a new revision starts them over."""

    revision: Annotated[str, Field(max_length=63)]
    started: Boolean = False
    """Every confirm-rollout gate opened and every pre-rollout hook said yes."""
    opened: Annotated[list[OpenedGate], Field(max_length=128)] | None = None
    waiting: Annotated[list[WaitingGate], Field(max_length=16)] | None = None


class ExperimentPhase(enum.StrEnum):
    PENDING = "Pending"  # its ReplicaSets are not all available yet
    RUNNING = "Running"  # all available: the analyses run, the duration counts
    SUCCESSFUL = "Successful"
    FAILED = "Failed"
    INCONCLUSIVE = "Inconclusive"
    TERMINATED = "Terminated"  # ended before it concluded: the release aborted or left the step


class ExperimentTemplateStatus(Model):
    name: Annotated[str, Field(max_length=32)]
    replica_set: ObjectName
    pod_template_hash: Annotated[str, Field(max_length=63)]
    service_name: ServiceName | None = None
    """The template's Service, when it asks for one."""
    replicas: Count = 0
    available_replicas: Count = 0


class ExperimentStatus(Model):
    """The experiment of a canary step: its ReplicaSets and where it stands (the latest one is kept)."""

    revision: Annotated[str, Field(max_length=63)]
    step_index: Count
    phase: ExperimentPhase
    message: Text | None = None
    available_at: datetime.datetime | None = None
    """When every ReplicaSet was first available: the duration counts from here."""
    templates: Annotated[list[ExperimentTemplateStatus], Field(max_length=8)] | None = None


class RolloutStatus(ObservedStatus):
    phase: Phase | None = None
    message: Text | None = None
    """Why the Rollout is in its phase, for people."""
    current_step_index: Count | None = None
    stable_revision: Annotated[str, Field(max_length=63)] | None = None
    """The pod-template-hash of the revision that serves production traffic."""
    canary_revision: Annotated[str, Field(max_length=63)] | None = None
    """The pod-template-hash of the revision being released."""
    weights: Weights | None = None
    replicas: Count | None = None
    """All pods of the Rollout, every revision."""
    ready_replicas: Count | None = None
    updated_replicas: Count | None = None
    """Pods of the revision being released."""
    available_replicas: Count | None = None
    selector: Annotated[str, Field(max_length=4096)] | None = None
    """The pods an HPA measures (the scale subresource's selector): those that carry production
    traffic. Canary and rolling: every pod of the Rollout; blue-green: the active revision's."""
    hpa_replicas: Count | None = None
    """The scale subresource's replicas: the pods of `selector`, at most spec.replicas (a routed
    canary's and a surge's pods beyond it are the strategy's, not replicas an HPA asked for)."""
    analysis_history: Annotated[list[AnalysisRecord], Field(max_length=ANALYSIS_HISTORY_LIMIT)] | None = None
    """The latest analysis outcomes, newest last."""
    # The controller's memory between reconciles (see delivery.rollout.decide.Memory).
    state: MachineState | None = None
    """The state machine's state, finer than the phase (analysing, promoting, aborting...)."""
    reason: Annotated[str, Field(max_length=128)] | None = None
    """The reason of the last transition, as in the conditions and the Event."""
    abort: Boolean | None = None
    """The release is aborted: traffic and replicas go back to the stable revision."""
    paused_by_person: Boolean | None = None
    pause_start_time: datetime.datetime | None = None
    traffic_moved_time: datetime.datetime | None = None
    """When the weight or a Service selector last changed: scale-down delays count from here."""
    progress_time: datetime.datetime | None = None
    """The last progress (a transition or a change of ready pods), for progressDeadlineSeconds."""
    transition_count: Count | None = None
    """Transitions so far: the sequence number that names each transition's Event."""
    gates: GatesStatus | None = None
    """The release's gates and once-only hooks (spec.hooks): which passed, which hold it."""
    restarted_at: datetime.datetime | None = None
    """The spec.restartAt whose restart is done: no pod of the Rollout is older than it."""
    experiment: ExperimentStatus | None = None
    """The latest experiment step's ReplicaSets and phase."""
    children_shard: ShardName | None = None
    """The shard (`delivery.luojilab.com/controller-id`; empty: the default one) the Rollout's
    ReplicaSets, Jobs, Services and copies were last labelled for. A controller of another shard
    (the Rollout moved, or it was made before children were labelled) relabels them first."""


class Rollout(Resource):
    """A progressive release of a pod template: rolling, canary steps or blue-green, gated on analysis."""

    api_version: Literal["delivery.luojilab.com/v1alpha1"]
    kind: Literal["Rollout"]
    spec: RolloutSpec
    status: RolloutStatus | None = None


ROLLOUT = CustomResource(
    group=DELIVERY_GROUP,
    kind="Rollout",
    plural="rollouts",
    short_names=("ro",),
    versions=(Version("v1alpha1", Rollout),),
    columns=(
        Column("Phase", ".status.phase"),
        Column("Step", ".status.currentStepIndex", "integer", "The canary step in force"),
        Column("Weight", ".status.weights.canary", "integer", "Percent of traffic on the canary"),
        Column("Stable", ".status.stableRevision"),
        Column("Canary", ".status.canaryRevision"),
        AGE,
    ),
    scalable=True,
)
