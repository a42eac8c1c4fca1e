"""Every kind of object the controller reads or writes, by name, whose version is the same in every
cluster we support; those whose version differs are `delivery.kube.discovery`'s `Api`s."""

from __future__ import annotations

from delivery.kube.api import Kind

REPLICA_SET = Kind("apps/v1", "ReplicaSet", "replicasets")
DEPLOYMENT = Kind("apps/v1", "Deployment", "deployments")
STATEFUL_SET = Kind("apps/v1", "StatefulSet", "statefulsets")
DAEMON_SET = Kind("apps/v1", "DaemonSet", "daemonsets")
SERVICE = Kind("v1", "Service", "services")
POD = Kind("v1", "Pod", "pods")
LEASE = Kind("coordination.k8s.io/v1", "Lease", "leases")
ROLLOUT = Kind("delivery.luojilab.com/v1alpha1", "Rollout", "rollouts")
NODE = Kind("v1", "Node", "nodes", namespaced=False)
CONFIG_MAP = Kind("v1", "ConfigMap", "configmaps")
COMPONENT = Kind("component.luojilab.com/v1beta1", "Component", "components")
CLUSTER_PROFILE = Kind(
    "component.luojilab.com/v1beta1", "ClusterProfile", "clusterprofiles", namespaced=False
)
SECRET = Kind("v1", "Secret", "secrets")
JOB = Kind("batch/v1", "Job", "jobs")
POD = Kind("v1", "Pod", "pods")
ANALYSIS_TEMPLATE = Kind("delivery.luojilab.com/v1alpha1", "AnalysisTemplate", "analysistemplates")
CLUSTER_ANALYSIS_TEMPLATE = Kind(
    "delivery.luojilab.com/v1alpha1", "ClusterAnalysisTemplate", "clusteranalysistemplates", namespaced=False
)
