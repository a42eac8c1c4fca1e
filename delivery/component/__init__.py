"""Components: a service in a few lines, rendered into the objects that run it.

Pure decisions, each in its own module: `render` (templates and ClusterProfile -> objects, with
`templating` and `overrides`), `adoption` (what to apply given what already runs), `drift` (whether
a write is needed), `partition` (a StatefulSet's release), `status` (Ready), `batch` and `inputs`
(re-rendering after an input change). I/O lives in `delivery.controllers.component`, `rerender`
(the batch's state and its report on the ClusterProfile), `steps` (what runs after the apply) with
`slb` (the load balancer step, over the `loadbalancer` client), and `plan` (`kubectl delivery plan`).
Nothing here imports the controllers: a step, or the batch, is given what it needs.
"""
