"""The Rollout controller: observe, decide, act, report. Thin: the decisions live in
`delivery.rollout.decide` and `strategies`, the writes in `delivery.rollout.act`.

Order of the writes in one reconcile, chosen so that a kill at any point is safe:
1. ReplicaSets, Services, traffic: idempotent targets, redone identically after a restart;
2. consumed command annotations are removed, only if the Rollout is still the version decided
   from (a JSON patch `test` of resourceVersion); a kill right after loses the command rather
   than acting on it twice;
3. the Event of each transition (two when a step ends and the next begins), named by the
   Rollout's uid and the transition's number, so re-creating it after a restart is a no-op and a
   re-created Rollout has Events of its own;
4. the status, guarded by the version the decision was taken from (or the one step 2 wrote):
   a decision taken on a stale read is refused (`Stale`) and taken again on fresh state;
5. the transition's notifications and metrics, once the status that records it is written;
6. an open-gate annotation is consumed only after the status that records the opened gate: a kill
   in between leaves it, to be read again as a gate already open (ignored), so an opening is
   never lost, and opening an open gate twice changes nothing.
"""

from __future__ import annotations

import datetime
import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from delivery.analysis import job
from delivery.analysis.run import Advanced, Analyst, Subject
from delivery.analysis.runner import Run, runs_from_status
from delivery.analysis.templates import builtin_args
from delivery.api.rollout import MachineState as State
from delivery.api.rollout import Phase, SpecRef
from delivery.controllers.cache import Cache, ObjectKey, key_of
from delivery.controllers.workqueue import WorkQueue
from delivery.kube import shard
from delivery.kube.api import JSON_PATCH, Kind, Kube, KubeError, Object
from delivery.kube.discovery import ApiNotServed, Discovery, Served
from delivery.kube.informer import Handler, Watch, trimmed
from delivery.kube.kinds import DEPLOYMENT, JOB, REPLICA_SET, ROLLOUT, SERVICE
from delivery.machine import MEASURED
from delivery.ops import logs
from delivery.report import Condition, EventNote, merge_conditions, now, record_event, sequence_of
from delivery.rollout import act, config, experiment, history, metadata, restart, tracking
from delivery.rollout.config import Problem
from delivery.rollout.decide import ANNOTATIONS, OPEN_GATE, Decision, Memory, Observed, decide
from delivery.rollout.experiment import EXPERIMENT_LABEL
from delivery.rollout.hooks import Gatekeeper
from delivery.rollout.plan import InvalidSpec, Plan, Plans
from delivery.rollout.revision import HASH_LABEL, ROLLOUT_LABEL, TEMPLATE_ANNOTATION, owner_reference
from delivery.rollout.status import CountsHold, applied, status_of
from delivery.rollout.tracking import Tracker
from delivery.rollout.workload import referenced_replicas
from delivery.traffic.route import Route, RoutingTargetMissing
from strategies import ReplicaSetState
from strategies.types import Role

log = logging.getLogger(__name__)

INVALID_RETRY = 15.0  # seconds: an invalid spec is looked at again, in case what it names appears
STALE_RETRY = 1.0  # seconds: a decision refused as stale is retaken at the latest this soon


class Stale(Exception):
    """The Rollout changed between the observation and a guarded write: decide again."""


def _replicasets(children: dict[str, Object]) -> dict[str, Object]:
    """The Rollout's ReplicaSets by revision, oldest first (an experiment's are not revisions)."""
    ordered = sorted(children.values(), key=lambda rs: rs["metadata"].get("creationTimestamp", ""))
    return {
        rs["metadata"]["labels"][HASH_LABEL]: rs
        for rs in ordered
        if HASH_LABEL in rs["metadata"]["labels"]
        and experiment.EXPERIMENT_LABEL not in rs["metadata"]["labels"]
    }


def _experiment_replicasets(children: dict[str, Object]) -> dict[str, Object]:
    """The Rollout's experiment ReplicaSets, by name."""
    return {
        rs["metadata"]["name"]: rs
        for rs in children.values()
        if experiment.EXPERIMENT_LABEL in rs["metadata"].get("labels", {})
    }


def _sources(
    by_revision: dict[str, Object], stable: str | None, canary: dict[str, Any]
) -> dict[SpecRef, dict[str, Any]]:
    """The pod templates an experiment's templates run: the canary's as the Rollout has it, the
    stable's as its ReplicaSet recorded it (the annotation the Rollout's template was written to)."""
    sources = {SpecRef.CANARY: canary}
    stable_rs = by_revision.get(stable) if stable else None
    if stable_rs is not None:
        recorded = (stable_rs["metadata"].get("annotations") or {}).get(TEMPLATE_ANNOTATION)
        sources[SpecRef.STABLE] = json.loads(recorded) if recorded else stable_rs["spec"]["template"]
    return sources


def _state(rs: Object) -> ReplicaSetState:
    status = rs.get("status") or {}
    return ReplicaSetState(
        rs["metadata"]["labels"][HASH_LABEL],
        rs["spec"].get("replicas", 0),
        status.get("availableReplicas", 0),
    )


def _route(rollout: Object, plan: Plan, apis: Served) -> Route | None:
    services = plan.services
    if plan.router is None or Role.STABLE not in services or Role.CANARY not in services:
        return None
    return Route(
        rollout["metadata"]["namespace"],
        services[Role.STABLE],
        services[Role.CANARY],
        owner_reference(rollout),
        plan.match,
        apis,
    )


ANALYSIS_START = 1.0  # seconds: a new analysis reads its templates and schedule this soon


def _analysis_wait(measured: Advanced, runs: tuple[Run, ...], now: datetime.datetime) -> float | None:
    """When the analyses need the next reconcile: a new one at once, a running one when due."""
    running = [run for run in runs if not run.final]
    if not running:
        return None
    if any(run not in measured.runs for run in running):
        return ANALYSIS_START
    if measured.next_check is None:
        return None
    return max((measured.next_check - now).total_seconds(), 0.0)


def _left(wait: float | None, moment: datetime.datetime) -> float | None:
    """A wait the decision counted from `moment`, less the time its writes took since: a pause
    ends when it is due, not that late."""
    if wait is None:
        return None
    return max(wait - (datetime.datetime.now(datetime.UTC) - moment).total_seconds(), 0.0)


def _child_of(cache: Cache) -> Callable[[ObjectKey, Object], None]:
    """Records a child found by a relabelling in `cache`, under its Rollout."""
    return lambda key, body: cache.observe_child("MODIFIED", key, body)


def _status_patch(previous: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
    """A merge patch from `previous` to `status` (keys that went away are set to null)."""
    return {**{key: None for key in previous if key not in status}, **status}


class RolloutController:
    def __init__(
        self,
        kube: Kube,
        workers: int,
        instance: str = "",
        prometheus_url: str | None = None,
        tracking: Iterable[str] = (),
        *,
        discovery: Discovery | None = None,
        controller_id: str | None = None,
    ) -> None:
        self.kube = kube
        self.controller_id = controller_id  # the shard: its Rollouts and their children are watched
        self.discovery = discovery or Discovery(kube)  # the routers' kinds, as this cluster serves them
        self.tracker = Tracker(tracking, controller_id)  # the kinds whose labelled objects are released
        self.analyst = Analyst(kube, prometheus_url)  # unset: $DELIVERY_PROMETHEUS_URL
        self.instance = instance  # this replica, in the Events it writes
        self.cache = Cache()
        self.plans = Plans()
        self.held = CountsHold()  # statuses that differ in their counts alone, waiting for a fact
        self.jobs = Cache()  # the analysis Jobs of `job` metrics, by Rollout
        self.services = Cache()  # the Services of experiment templates, by Rollout
        self.unseen: set[ObjectKey] = set()  # Rollouts with a child the watches do not show: relabel
        self.queue: WorkQueue[ObjectKey] = WorkQueue(self.reconcile, workers, "rollouts")
        # Told of each transition once, when its Event is first written (metrics, notifications).
        self.gatekeeper = Gatekeeper(kube, lambda: self.analyst.egress)  # spec.hooks, with analysis' egress
        self.on_transition: list[Callable[[Object, dict[str, Any], EventNote], None]] = [self.gatekeeper.tell]

    def watches(self) -> list[tuple[Watch, Handler]]:
        """What this controller caches, all of it the shard's only (selected server-side, since each
        child carries its Rollout's shard label): the Rollouts, their ReplicaSets, the Jobs of their
        analyses (a Job's end reconciles its Rollout at once), the Services of their experiments, and
        the copies of tracked ConfigMaps and Secrets; and the tracked objects themselves (anyone's)."""
        ours = self.controller_id
        return [
            (Watch(ROLLOUT, label_selector=shard.selector(ours)), self._on_rollout),
            (Watch(REPLICA_SET, label_selector=shard.of_children(ROLLOUT_LABEL, ours)), self._on_replicaset),
            (Watch(JOB, label_selector=shard.of_children(job.JOB_LABEL, ours)), self._on_job),
            (Watch(SERVICE, label_selector=shard.of_children(EXPERIMENT_LABEL, ours)), self._on_service),
            *self.tracker.watches(self._on_source, lambda namespace, name: self.queue.add((namespace, name))),
        ]

    def _children(self, name: str) -> list[tuple[Kind, str, Callable[[ObjectKey, Object], object]]]:
        """Each kind of a Rollout's children, the selector of its children of that kind (not its
        shard's: a relabelling looks for those the watches miss) and where one found is recorded."""
        copies = f"{config.COPY_LABEL},{ROLLOUT_LABEL}={name}"
        return [
            (REPLICA_SET, f"{ROLLOUT_LABEL}={name}", _child_of(self.cache)),
            (JOB, f"{job.JOB_LABEL}={name}", _child_of(self.jobs)),
            (SERVICE, f"{EXPERIMENT_LABEL},{ROLLOUT_LABEL}={name}", _child_of(self.services)),
            *(
                (tracking.KINDS[kind], copies, lambda _key, body: self.tracker.observe_copy("MODIFIED", body))
                for kind in sorted(self.tracker.kinds)
            ),
        ]

    async def _relabel(self, rollout: Object) -> None:
        """Find the Rollout's children that the watches may miss and put them in its shard: one
        listing per kind of child, by the Rollout's name, unselected by shard; each child it owns
        (by uid: a copy may be owned by one of its ReplicaSets) relabelled where its shard label
        differs, and recorded in the caches at once, so the decision that follows sees them all.
        Nothing is decided for the Rollout until this has succeeded (a failure raises first)."""
        key = key_of(rollout)
        namespace, name = key
        owners = {rollout["metadata"]["uid"]}
        moved = 0
        for kind, selector, record in self._children(name):
            for item in await self.kube.list(kind, namespace, selector):
                body = trimmed({"apiVersion": kind.api_version, "kind": kind.kind, **item})
                metadata = body["metadata"]
                if not owners & {ref.get("uid") for ref in metadata.get("ownerReferences") or ()}:
                    continue  # a former Rollout's of this name, or someone else's
                patch = shard.relabelled(body, self.controller_id)
                if patch is not None:
                    body = trimmed(await self.kube.patch(kind, namespace, metadata["name"], patch))
                    moved += 1
                if kind is REPLICA_SET:
                    owners.add(metadata["uid"])  # a copy handed to its ReplicaSet is the Rollout's too
                record(key, body)
        if moved:
            log.info("%s/%s: %d children relabelled for this shard", namespace, name, moved)
        self.unseen.discard(key)

    def _on_source(self, namespace: str, kind: str, name: str) -> None:
        for rollout in self.tracker.uses(self.cache.values(), namespace, kind, name):
            self.queue.add(key_of(rollout))

    def _on_rollout(self, event_type: str, body: Object) -> None:
        self.queue.add(self.cache.observe(event_type, body))

    def _on_replicaset(self, event_type: str, body: Object) -> None:
        owner = (body["metadata"]["namespace"], body["metadata"]["labels"][ROLLOUT_LABEL])
        self.cache.observe_child(event_type, owner, body)
        self.queue.add(owner)

    def _on_service(self, event_type: str, body: Object) -> None:
        labels = body["metadata"].get("labels") or {}
        if ROLLOUT_LABEL not in labels:
            return  # labelled by someone else: not an experiment's
        owner = (body["metadata"]["namespace"], labels[ROLLOUT_LABEL])
        self.services.observe_child(event_type, owner, body)
        self.queue.add(owner)

    def _on_job(self, event_type: str, body: Object) -> None:
        owner = (body["metadata"]["namespace"], body["metadata"]["labels"][job.JOB_LABEL])
        self.jobs.observe_child(event_type, owner, body)
        self.queue.add(owner)

    async def reconcile(self, key: ObjectKey) -> float | None:
        rollout = self.cache.get(key)
        if rollout is None:
            self.queue.forget(key)
            self.gatekeeper.forget(key)
            self.plans.forget(key)
            self.held.written(key)
            return None
        try:
            if key in self.unseen or shard.needs_relabel(rollout.get("status") or {}, self.controller_id):
                await self._relabel(rollout)
            return await self._reconcile(rollout)
        except act.ChildExists as error:
            log.info("%s/%s: %s; listing its children", key[0], key[1], error)
            self.unseen.add(key)
            return STALE_RETRY
        except (InvalidSpec, RoutingTargetMissing, ApiNotServed) as error:
            if not isinstance(error, InvalidSpec):  # a CRD installed or removed since discovery?
                self.discovery.stale()
            return await self._invalid(rollout, str(error))
        except Stale as error:
            # The Rollout changed after the decision was taken: the change's own watch event runs
            # the reconcile again on it; the requeue is only a backstop.
            log.info("%s/%s: %s; deciding again", key[0], key[1], error)
            return STALE_RETRY

    async def _reconcile(self, rollout: Object) -> float | None:
        key = key_of(rollout)
        namespace = key[0]
        referenced = await self._referenced(rollout)
        plan = self.plans.of(rollout, referenced)
        children = self.cache.children(key)
        by_revision = _replicasets(children)
        trial = _experiment_replicasets(children)
        status = rollout.get("status") or {}
        record = experiment.Record.from_status(status.get("experiment"))
        memory = Memory.from_status(status)
        in_use = [by_revision[r] for r in {memory.revision, memory.stable} if r in by_revision]
        release = await self.tracker.resolve(self.kube, rollout, plan.template, in_use, plan.revision)
        if isinstance(release, Problem):
            return await self._unconfigured(rollout, release)
        if release.revision not in by_revision:  # its copies first, before its ReplicaSet
            problem = await self.tracker.prepare(self.kube, rollout, release)
            if problem is not None:
                return await self._unconfigured(rollout, problem)
        revision = release.revision
        logs.REVISION.set(revision)
        states = tuple(_state(rs) for rs in by_revision.values())
        services = plan.services
        target = _route(rollout, plan, await self.discovery.current())
        applied_weight = (
            await plan.router.weight(self.kube, target)
            if plan.router is not None and target is not None
            else (status.get("weights") or {}).get("canary", 0)
        )
        annotations = rollout["metadata"].get("annotations") or {}
        moment = datetime.datetime.now(datetime.UTC)
        measuring = moment.replace(microsecond=0)  # analysis is dated in whole seconds, as its status
        roles = {role.value: name for role, name in plan.services.items()}
        builtin = builtin_args(namespace, key[1], revision, memory.stable or revision, roles)
        subject = Subject(namespace, builtin, rollout, dict(self.jobs.children(key)))
        analyses = experiment.Filled(plan, record)
        runs = runs_from_status(status)
        measured = await self.analyst.advance(runs, analyses, revision, subject, measuring)
        gates, answers = await self.gatekeeper.ask(rollout, plan, memory, revision, moment)
        observed = Observed(
            plan=plan,
            revision=revision,
            memory=memory,
            replicasets=states,
            applied_weight=applied_weight,
            applied_selectors=await act.applied_selectors(self.kube, namespace, services),
            commands={k: v for k, v in annotations.items() if k in ANNOTATIONS},
            now=moment,
            runs=measured.runs,
            gates=gates,
            answers=answers,
            rollout=key[1],
            experiment=record,
            experiment_available={
                name: (rs.get("status") or {}).get("availableReplicas", 0) for name, rs in trial.items()
            },
            experiment_sources=_sources(by_revision, memory.stable, release.template),
        )
        decision = decide(observed)
        wanted = metadata.roles(
            by_revision,
            current=revision,
            stable=decision.memory.stable,
            new=plan.new_metadata,
            steady=plan.steady_metadata,
        )
        await self._act(
            rollout,
            plan,
            act.Workload(
                release.template,
                plan.match_labels,
                revision,
                plan.min_ready_seconds,
                plan.anti_affinity,
                decision.memory.stable,
                wanted[revision],
            ),
            by_revision,
            decision,
            trial=trial,
            wanted=wanted,
            target=target,
            applied_weight=applied_weight,
        )
        desired = decision.desired.replicas
        restarting = await restart.restart(
            self.kube, rollout, plan, by_revision, desired=desired, current=revision, now=moment
        )
        await self.tracker.adopt(self.kube, rollout, by_revision.values())
        had = any(c["type"] == tracking.READY for c in status.get("conditions", []))
        counts_wait = await self._report(
            rollout,
            plan,
            decision,
            applied(states, desired, revision),
            restarted_at=restarting.restarted_at,
            configured=tracking.condition(release, had),
        )
        await self._tell_measurements(rollout, measured)
        await self.analyst.collect(decision.runs, subject)
        if referenced is not None:
            healthy = decision.memory.state is State.HEALTHY
            await self._retire_referenced(referenced, plan, healthy, sum(rs.ready for rs in states))
        analysis_wait = _analysis_wait(measured, decision.runs, measuring)
        hook_wait = _left(self.gatekeeper.next_ask(rollout, plan, decision, revision, moment), moment)
        candidates = (
            _left(decision.requeue_after, moment),
            analysis_wait,
            restarting.wait,
            hook_wait,
            counts_wait,
        )
        waits = [w for w in candidates if w is not None]
        return min(waits) if waits else None

    async def _referenced(self, rollout: Object) -> Object | None:
        reference = rollout["spec"].get("workloadRef")
        if not reference:
            return None
        return await self.kube.get(DEPLOYMENT, rollout["metadata"]["namespace"], reference["name"])

    async def _retire_referenced(self, deployment: Object, plan: Plan, healthy: bool, ready: int) -> None:
        """The Deployment handed over by workloadRef scaled as its `scaleDown` says (by default to
        zero once the Rollout is Healthy in its place); written only when that changes it."""
        current = deployment["spec"].get("replicas", 1)
        wanted = referenced_replicas(
            plan.scale_down, healthy=healthy, current=current, replicas=plan.replicas, ready=ready
        )
        if wanted == current:
            return
        metadata = deployment["metadata"]
        await self.kube.patch_guarded(
            DEPLOYMENT,
            metadata["namespace"],
            metadata["name"],
            metadata["resourceVersion"],
            {"spec": {"replicas": wanted}},
        )

    async def _invalid(self, rollout: Object, message: str) -> float:
        """Say in the status why the spec cannot be released; nothing else is touched. Retried
        when the spec (or what it names) changes, and every 15 seconds in case something it names appears."""
        condition = Condition("InvalidSpec", True, "InvalidSpec", message)
        return await self._hold(rollout, condition, {"phase": Phase.DEGRADED.value, "message": message})

    async def _unconfigured(self, rollout: Object, problem: Problem) -> float:
        """The configuration is missing or unknown: nothing is released or moved, the condition
        says why, once a Warning Event; retried as an invalid spec is, and at once when a
        tracked object changes."""
        condition = tracking.condition(problem, True)
        assert condition is not None  # noqa: S101 - a problem always has its condition
        note = EventNote(problem.reason, problem.message, warning=True)
        sequence = sequence_of(problem.reason, problem.message)
        await record_event(self.kube, rollout, sequence, note, self.instance)
        return await self._hold(rollout, condition, {})

    async def _hold(self, rollout: Object, condition: Condition, fields: dict[str, Any]) -> float:
        """Write `condition` (and `fields`) to the status if they differ; touch nothing else."""
        metadata = rollout["metadata"]
        previous = rollout.get("status") or {}
        generation = metadata.get("generation", 1)
        conditions = merge_conditions(previous.get("conditions", []), [condition], generation, now())
        status = {
            **previous,
            "observedGeneration": generation,
            **fields,
            "conditions": conditions,
            shard.RECORDED: shard.recorded(self.controller_id),
        }
        if status != previous:
            log.warning("%s/%s: %s", metadata["namespace"], metadata["name"], condition.message)
            written = await self.kube.patch_guarded(
                ROLLOUT,
                metadata["namespace"],
                metadata["name"],
                metadata["resourceVersion"],
                {"status": _status_patch(previous, status)},
                subresource="status",
            )
            self.cache.observe("MODIFIED", trimmed(written))
            self.held.written(key_of(rollout))
        return INVALID_RETRY

    async def _act(
        self,
        rollout: Object,
        plan: Plan,
        workload: act.Workload,
        by_revision: dict[str, Object],
        decision: Decision,
        *,
        trial: dict[str, Object],
        wanted: dict[str, metadata.Injected | None],
        target: Route | None,
        applied_weight: int,
    ) -> None:
        desired = decision.desired
        namespace = rollout["metadata"]["namespace"]
        await act.scale(self.kube, rollout, workload, by_revision, desired.replicas, up=True)
        await self._experiment(rollout, plan, decision, workload, trial, by_revision=by_revision)
        services = plan.services
        await act.select(
            self.kube,
            namespace,
            {services[role]: rev for role, rev in desired.selectors.items() if role in services},
        )
        await act.route(self.kube, plan.router, target, desired.canary_weight, applied_weight)
        await act.scale(self.kube, rollout, workload, by_revision, desired.replicas, up=False)
        doomed = history.beyond_limit(by_revision.values(), plan.revision_history_limit, decision)
        kept = {revision: rs for revision, rs in by_revision.items() if all(rs is not old for old in doomed)}
        await act.keep_metadata(self.kube, workload, kept, wanted, plan.pod_selector)  # not on the doomed
        await act.delete_replicasets(self.kube, doomed)
        await self._experiment_gone(rollout, decision, trial)

    async def _experiment(
        self,
        rollout: Object,
        plan: Plan,
        decision: Decision,
        workload: act.Workload,
        trial: dict[str, Object],
        *,
        by_revision: dict[str, Object],
    ) -> None:
        """Make the running experiment's missing ReplicaSets and Services (those it no longer wants
        are deleted after the scale-down, with the history: `_experiment_gone`)."""
        record = decision.experiment
        planned = plan.experiment_at(record.step_index) if record is not None else None
        if record is None or planned is None or record.final:
            return
        key = key_of(rollout)
        services = self.services.children(key)
        sources = _sources(by_revision, decision.memory.stable, workload.template)
        by_name = {t.name: t for t in planned.templates}
        for status in record.templates:
            template = by_name.get(status.name)
            existing = trial.get(status.replica_set)
            if existing is not None:
                await act.resize(self.kube, existing, status.replicas)
            elif template is not None:
                body = experiment.replica_set(
                    rollout,
                    template,
                    status,
                    sources,
                    match_labels=plan.match_labels,
                    min_ready_seconds=plan.min_ready_seconds,
                )
                if body is not None:
                    await act.create(self.kube, REPLICA_SET, body)
                existing = body
            wanted = experiment.service(rollout, status, existing) if existing is not None else None
            if wanted is not None and wanted["metadata"]["name"] not in services:
                await act.create(self.kube, SERVICE, wanted)

    async def _experiment_gone(self, rollout: Object, decision: Decision, trial: dict[str, Object]) -> None:
        """Delete the experiment ReplicaSets and Services the decision no longer wants."""
        replicasets = experiment.desired(decision.experiment)
        await act.delete_replicasets(self.kube, [rs for name, rs in trial.items() if name not in replicasets])
        services = experiment.services(decision.experiment)
        for name, service in self.services.children(key_of(rollout)).items():
            if name not in services:
                await self.kube.delete(SERVICE, service["metadata"]["namespace"], name)

    async def _report(
        self,
        rollout: Object,
        plan: Plan,
        decision: Decision,
        states: tuple[ReplicaSetState, ...],
        *,
        restarted_at: str | None = None,
        configured: Condition | None = None,
    ) -> float | None:
        """Consume the commands, record the transition's Event, write the status; the wait after
        which a status held back for its counts alone (`CountsHold`) is to be written."""
        metadata = rollout["metadata"]
        namespace, name = metadata["namespace"], metadata["name"]
        key = (namespace, name)
        previous = rollout.get("status") or {}
        resource_version = metadata["resourceVersion"]
        commands = tuple(name for name in decision.consumed if name != OPEN_GATE)
        if commands:
            resource_version = await self._consume(rollout, commands, resource_version)
        status = status_of(
            previous,
            decision,
            generation=metadata.get("generation", 1),
            replicasets=states,
            replicas=plan.replicas,
            selector=plan.pod_selector,
            now=now(),
            active=decision.desired.selectors.get(Role.ACTIVE),
        )
        if restarted_at is not None:
            status["restartedAt"] = restarted_at
        status[shard.RECORDED] = shard.recorded(self.controller_id)  # its children are labelled so
        if configured is not None:
            generation = metadata.get("generation", 1)
            status["conditions"] = merge_conditions(status["conditions"], [configured], generation, now())
        told: list[tuple[int, EventNote]] = []
        first = status["transitionCount"] - len(decision.transitions) + 1
        for sequence, transition in enumerate(decision.transitions, start=first):
            log.info(
                "%s/%s: %s -> %s (%s) %s",
                namespace,
                name,
                transition.source,
                transition.dest,
                transition.reason,
                transition.message,
            )
            note = EventNote(transition.reason.value, transition.message, transition.warning)
            await record_event(self.kube, rollout, sequence, note, self.instance)
            told.append((sequence, note))
        for sequence, gate_note in decision.events:  # a gate opened or held: once each, by its name
            await record_event(self.kube, rollout, sequence, gate_note, self.instance)
        held = (
            None
            if decision.consumed
            else self.held.wait(
                key,
                previous,
                status,
                time.monotonic(),
                reported=plan.traffic_reported,
                moving=decision.moving,
            )
        )
        if held is not None:  # the counts alone changed: they wait for a fact to carry them
            return held
        if status != previous:
            try:
                written = await self.kube.patch_guarded(
                    ROLLOUT,
                    namespace,
                    name,
                    resource_version,
                    {"status": _status_patch(previous, status)},
                    subresource="status",
                )
            except KubeError as error:
                if error.conflict:
                    raise Stale("the status changed since it was read") from error
                raise
            self.cache.observe("MODIFIED", trimmed(written))
            self.held.written(key)
            resource_version = written["metadata"]["resourceVersion"]
        for sequence, note in told:
            # Told once the status that records the transition is written: exactly one write
            # takes transitionCount past this number (it is guarded), so at most once, and a
            # decision refused as stale tells nobody of a transition that did not happen.
            for hook in self.on_transition:
                hook(rollout, status | {"transitionCount": sequence}, note)
        if OPEN_GATE in decision.consumed:
            await self._consume(rollout, (OPEN_GATE,), resource_version)
        return None

    async def _tell_measurements(self, rollout: Object, measured: Advanced) -> None:
        """An Event for each notable measurement, once it is in the status."""
        for taken in measured.taken:
            if taken.notable:
                reason = MEASURED[taken.measurement.phase]
                note = EventNote(reason.value, taken.message(), warning=True)
                await record_event(self.kube, rollout, taken.sequence, note, self.instance)

    async def _consume(self, rollout: Object, names: tuple[str, ...], resource_version: str) -> str:
        """Remove acted-on command annotations, only if the Rollout is still `resource_version` (the
        version decided from, or the status written from it); the new version, which then guards
        the status write."""
        metadata = rollout["metadata"]
        annotations = metadata.get("annotations") or {}
        operations: list[dict[str, Any]] = [
            {"op": "test", "path": "/metadata/resourceVersion", "value": resource_version}
        ]
        for name in names:
            path = "/metadata/annotations/" + name.replace("~", "~0").replace("/", "~1")
            operations += [
                {"op": "test", "path": path, "value": annotations[name]},
                {"op": "remove", "path": path},
            ]
        try:
            written = await self.kube.patch(
                ROLLOUT, metadata["namespace"], metadata["name"], operations, content_type=JSON_PATCH
            )
        except KubeError as error:
            if error.status in (409, 422):  # a failed test: the Rollout changed since the decision
                raise Stale(f"the Rollout changed before its commands were consumed: {error}") from error
            raise
        self.cache.observe("MODIFIED", trimmed(written))
        version: str = written["metadata"]["resourceVersion"]
        return version
