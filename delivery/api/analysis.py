"""AnalysisTemplate and ClusterAnalysisTemplate: how a release is judged, metric by metric.

A metric measures with one provider (a Prometheus query, a web request, a Kubernetes Job, or
the judge's statistical comparison of canary and stable) on a schedule, and each measurement is
successful, failed, inconclusive or an error; the limits say how many of each a release
survives. Templates take `args` so that one template serves many Rollouts.

The fields are Argo Rollouts' (an Argo AnalysisTemplate applies with its apiVersion changed),
`dryRun`, `measurementRetention`, `consecutiveSuccessLimit` and `args[].valueFrom` included;
what we add (the judge, a header's `valueFrom`) or default differently is said field by field.
"""

from __future__ import annotations

import enum
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from delivery.api.common import (
    Count,
    Duration,
    FreeForm,
    Integer,
    Key,
    KeyedBy,
    Labels,
    Model,
    Number,
    ObjectName,
    ObservedStatus,
    Resource,
)
from delivery.api.definition import DELIVERY_GROUP, CustomResource, Version
from delivery.api.rules import Rule, at_most_one, exactly_one

Query = Annotated[str, Field(min_length=1, max_length=8192)]
Expression = Annotated[str, Field(min_length=1, max_length=1024)]
"""A condition over a measurement's `result`, in the analysis condition language (`result[0] < 0.01`)."""
Address = Annotated[str, Field(min_length=1, max_length=2048)]
"""A base URL; it may use arguments (`{{args.prometheus}}`)."""


class ProviderName(enum.StrEnum):
    PROMETHEUS = "prometheus"
    WEB = "web"
    JOB = "job"
    JUDGE = "judge"


class HttpMethod(enum.StrEnum):
    GET = "GET"
    POST = "POST"
    PUT = "PUT"


class Direction(enum.StrEnum):
    """Which change of the canary's metric, against the stable's, fails the canary."""

    INCREASE_IS_BAD = "increase-is-bad"  # latency, error rate
    DECREASE_IS_BAD = "decrease-is-bad"  # throughput, success rate
    EITHER = "either"


class SecretKeySelector(Model):
    name: ObjectName
    key: Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")]


class SecretSource(Model):
    secret_key_ref: SecretKeySelector
    """A key of a Secret in the namespace of the analysed Rollout, read only with the Secret's
    consent (the label `delivery.luojilab.com/analysis-secret: "true"`)."""


class Argument(Model):
    name: Key
    value: Annotated[str, Field(max_length=4096)] | None = None
    """The default; unset (and no `valueFrom`): every Rollout using the template must give a value."""
    value_from: SecretSource | None = None
    """The value from a Secret (as in Argo Rollouts); a Rollout's value for the argument wins."""

    rules = (at_most_one("value", "valueFrom"),)


def _pattern(text: str) -> str:
    try:
        re.compile(text)
    except re.error as error:  # a ValueError: the model refuses the object, naming the field
        raise ValueError(f"not a regular expression: {error}") from error
    return text


MetricPattern = Annotated[str, Field(min_length=1, max_length=256), AfterValidator(_pattern)]
"""A regular expression searched for in metric names (`.*`: every metric), as in Argo Rollouts;
the controller refuses one that does not compile (the CRD's schema cannot tell)."""


class DryRun(Model):
    """Metrics measured and reported whose outcome never fails, pauses or holds the analysis."""

    metric_name: MetricPattern


class MeasurementRetention(Model):
    """How many measurements of the metrics whose names match are kept in the status."""

    metric_name: MetricPattern
    limit: Count
    """Measurements kept (at most 100, the status's bound); 0: the default, 5."""


class Prometheus(Model):
    address: Address | None = None
    """Unset: the Prometheus the controller is configured with."""
    query: Query
    """PromQL; its result is the measurement."""


HeaderName = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[-A-Za-z0-9!#$%&'*+.^_`|~]+$")]


class WebHeader(Model):
    key: HeaderName | None = None
    """The header's name, as Argo Rollouts writes it (`- key: Authorization`)."""
    name: HeaderName | None = None
    """The same as `key`, this API's earlier spelling (exactly one of the two)."""
    value: Annotated[str, Field(max_length=4096)] | None = None
    value_from: SecretSource | None = None
    """The value from a Secret; in Argo Rollouts' way, an argument `valueFrom.secretKeyRef` does the same."""

    rules = (exactly_one("key", "name"), exactly_one("value", "valueFrom"))

    @property
    def header(self) -> str:
        """The header's name, however it was written."""
        written = self.key or self.name
        assert written is not None  # noqa: S101 - the rule above: key or name
        return written


class Web(Model):
    url: Annotated[str, Field(min_length=1, max_length=2048, pattern=r"^(https?://|\{\{).+$")]
    """http(s) URL; it may start with an argument (`{{args.base}}/health`)."""
    method: HttpMethod = HttpMethod.GET
    headers: Annotated[list[WebHeader], Field(max_length=32)] | None = None
    body: Annotated[str, Field(max_length=65536)] | None = None
    json_body: FreeForm | None = None
    """The body as JSON (Argo Rollouts' `jsonBody`), sent with `Content-Type: application/json`."""
    json_path: Annotated[str, Field(min_length=1, max_length=1024)] | None = None
    """The part of the JSON response that is the measurement (`{$.data.ok}`); unset: all of it."""
    timeout_seconds: Annotated[Integer, Field(ge=1, le=300)] = 10

    rules = (
        Rule(
            cel=f"!(has(self.body) || has(self.jsonBody)) || self.method != '{HttpMethod.GET}'",
            message="body and jsonBody are not allowed with method GET",
            holds=lambda wire: not ("body" in wire or "jsonBody" in wire) or wire["method"] != HttpMethod.GET,
            field_path=".body",
        ),
        at_most_one("body", "jsonBody"),
    )


class JobMetadata(Model):
    labels: Labels | None = None
    annotations: (
        Annotated[dict[str, Annotated[str, Field(max_length=65536)]], Field(max_length=64)] | None
    ) = None


class Job(Model):
    """A Kubernetes Job per measurement: it completes, the measurement is successful; it fails,
    the measurement fails with the Job's and its pod's reasons. Owned by the Rollout."""

    metadata: JobMetadata | None = None
    """Labels and annotations of each Job (the controller adds its own)."""
    spec: FreeForm
    """A batch/v1 JobSpec, as in a Job; the apiserver checks it when the Job is created."""


class Judge(Model):
    """Compares the canary's samples with the stable's (Mann-Whitney U test) instead of a
    threshold: a canary is judged against what production does right now, not against a number."""

    address: Address | None = None
    """Unset: the Prometheus the controller is configured with."""
    canary_query: Query
    """PromQL whose samples describe the canary (use `{{args.canary-hash}}`-style arguments)."""
    stable_query: Query
    """The same measurement for the stable revision."""
    direction: Direction = Direction.INCREASE_IS_BAD
    tolerance: Annotated[Number, Field(ge=0, le=100)] = 0.0
    """The relative change (0.1 = 10%) of the canary against the stable that still passes."""
    min_samples: Annotated[Integer, Field(ge=3, le=100000)] = 20
    """Fewer samples of either side make the measurement inconclusive."""
    step: Duration | None = None
    """Time between the samples read from each query, since the analysis began; unset: that time
    divided by 240, 1s at least. Make it no shorter than the scrape interval, or samples repeat."""


class MetricProvider(Model):
    prometheus: Prometheus | None = None
    web: Web | None = None
    job: Job | None = None
    judge: Judge | None = None

    rules = (exactly_one(*ProviderName),)


class Metric(Model):
    name: Key
    provider: MetricProvider
    interval: Duration | None = None
    """Time between measurements; unset: one measurement."""
    count: Annotated[Integer, Field(ge=1, le=10000)] | None = None
    """Measurements to take; unset with an interval: measure until the release moves on."""
    initial_delay: Duration | None = None
    """Wait this long before the first measurement, so the new pods have some traffic."""
    success_condition: Expression | None = None
    failure_condition: Expression | None = None
    failure_limit: Annotated[Integer, Field(ge=-1, le=2**31 - 1)] = 0
    """Failed measurements tolerated; one more fails the analysis. -1: no limit (then
    `consecutiveSuccessLimit` decides)."""
    inconclusive_limit: Count = 0
    """Inconclusive measurements tolerated; one more makes the analysis inconclusive (paused)."""
    consecutive_error_limit: Count = 4
    """Errors in a row (unreachable provider) tolerated; one more is an error."""
    consecutive_success_limit: Count = 0
    """Successful measurements in a row that make the metric successful at once; 0: not used.
    When `count` is reached first, the metric is inconclusive (failed if `failureLimit` is -1)."""

    rules = (
        Rule(
            cel="!has(self.count) || self.count <= 1 || has(self.interval)",
            message="interval is required when count is above 1",
            holds=lambda wire: wire.get("count", 1) <= 1 or "interval" in wire,
            field_path=".interval",
        ),
        Rule(
            cel=(
                "has(self.provider.job) || "
                "has(self.provider.judge) != (has(self.successCondition) || has(self.failureCondition))"
            ),
            message="successCondition or failureCondition is required, and not allowed for a judge",
            holds=lambda wire: (
                ProviderName.JOB in wire["provider"]
                or (ProviderName.JUDGE in wire["provider"])
                != ("successCondition" in wire or "failureCondition" in wire)
            ),
        ),
        Rule(
            cel="self.failureLimit >= 0 || self.consecutiveSuccessLimit > 0",
            message="failureLimit -1 needs a consecutiveSuccessLimit above 0: nothing could end the metric",
            holds=lambda wire: wire["failureLimit"] >= 0 or wire["consecutiveSuccessLimit"] > 0,
            field_path=".failureLimit",
        ),
    )


DryRuns = Annotated[list[DryRun], KeyedBy("metricName"), Field(max_length=16)]
Retentions = Annotated[list[MeasurementRetention], KeyedBy("metricName"), Field(max_length=16)]


class AnalysisTemplateSpec(Model):
    args: Annotated[list[Argument], KeyedBy("name"), Field(max_length=32)] | None = None
    metrics: Annotated[list[Metric], KeyedBy("name"), Field(min_length=1, max_length=16)]
    dry_run: DryRuns | None = None
    """Metrics in dry-run mode (a Rollout's analysis may name more)."""
    measurement_retention: Retentions | None = None


class TemplateResource(Resource):
    spec: AnalysisTemplateSpec
    status: ObservedStatus | None = None


class AnalysisTemplate(TemplateResource):
    """How to judge a release: metrics, their providers and the limits of failure."""

    api_version: Literal["delivery.luojilab.com/v1alpha1"]
    kind: Literal["AnalysisTemplate"]


class ClusterAnalysisTemplate(TemplateResource):
    """An AnalysisTemplate that every namespace can use."""

    api_version: Literal["delivery.luojilab.com/v1alpha1"]
    kind: Literal["ClusterAnalysisTemplate"]


ANALYSIS_TEMPLATE = CustomResource(
    group=DELIVERY_GROUP,
    kind="AnalysisTemplate",
    plural="analysistemplates",
    short_names=("at",),
    versions=(Version("v1alpha1", AnalysisTemplate),),
)
CLUSTER_ANALYSIS_TEMPLATE = CustomResource(
    group=DELIVERY_GROUP,
    kind="ClusterAnalysisTemplate",
    plural="clusteranalysistemplates",
    short_names=("cat",),
    versions=(Version("v1alpha1", ClusterAnalysisTemplate),),
    namespaced=False,
)
