/* `coffer k8s-operator`: the Kubernetes operator, a drop-in for Infisical's, that syncs Coffer
 * secrets into Kubernetes Secrets (docs/kubernetes.md). It is a client of two APIs, Coffer's
 * (client/) and the cluster's (kube/kube.h), and so lives beside cli/ rather than in the server's
 * layers. */
#ifndef CF_KUBE_OPERATOR_H
#define CF_KUBE_OPERATOR_H

/* Runs the operator until SIGTERM or SIGINT. Exit status 0 after a signal, 1 when it cannot start
 * (no cluster configuration, unreadable token), 2 for a usage error. */
int cf_cmd_k8s_operator(int argc, char **argv);

#endif
