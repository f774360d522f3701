"""zerowire test harness: a real local control plane (etcd + kube-apiserver
1.20), and stand-ins for the node (backend processes + EndpointSlices) and for
KEDA (external-push gRPC client). See docs/control-plane.md."""
