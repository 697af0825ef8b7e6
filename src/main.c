/*
 * main.c: parses flags, opens one SO_REUSEPORT listener per worker, starts
 * the workers, and waits for SIGINT/SIGTERM to ask them to drain. The only
 * thread that handles signals: they are blocked everywhere else.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "worker.h"

/* A listening socket on addr:port with SO_REUSEPORT, so each worker has its
 * own accept queue. Returns the fd or a negative errno. */
static int listen_on(const char *addr, int port, int *bound_port)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, addr, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
        sl = sizeof(*in4);
    } else if (inet_pton(AF_INET6, addr, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        sl = sizeof(*in6);
    } else {
        fprintf(stderr, "ringcast: --bind %s: expected an IPv4 or IPv6 address\n", addr);
        return -EINVAL;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    /* Accepted sockets inherit it: small pushes leave at once. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 4096) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    sl = sizeof(ss);
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    *bound_port = ntohs(ss.ss_family == AF_INET ? in4->sin_port : in6->sin6_port);
    return fd;
}

int main(int argc, char **argv)
{
    static struct server srv;
    int rc = config_parse(&srv.cfg, argc, argv);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    srv.nworkers = srv.cfg.workers;

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    /* Certificate problems first, before any port is taken. wolfSSL's global
     * setup happens here, before any worker. */
    if (srv.cfg.tls_cert[0]) {
        char err[512] = "";
        srv.tls = tls_server_new(srv.cfg.tls_cert, srv.cfg.tls_key, err, sizeof(err));
        if (!srv.tls) {
            fprintf(stderr, "ringcast: %s\n", err);
            tls_thread_done();
            return 2;
        }
        if (err[0])
            fprintf(stderr, "ringcast: warning: %s\n", err);
    }
    int *fds = calloc((size_t)srv.nworkers, sizeof(int));
    int port = srv.cfg.port;
    for (int i = 0; i < srv.nworkers; i++) {
        fds[i] = listen_on(srv.cfg.bind, port, &port);
        if (fds[i] < 0) {
            fprintf(stderr, "ringcast: cannot listen on %s port %d: %s\n", srv.cfg.bind, port,
                    strerror(-fds[i]));
            return 1;
        }
    }
    srv.port = port;
    int *tls_fds = NULL;
    if (srv.tls) {
        tls_fds = calloc((size_t)srv.nworkers, sizeof(int));
        int tport = srv.cfg.tls_port;
        for (int i = 0; i < srv.nworkers; i++) {
            tls_fds[i] = listen_on(srv.cfg.bind, tport, &tport);
            if (tls_fds[i] < 0) {
                fprintf(stderr, "ringcast: cannot listen for TLS on %s port %d: %s\n",
                        srv.cfg.bind, tport, strerror(-tls_fds[i]));
                return 1;
            }
        }
        srv.tls_port = tport;
    }
    serve_init(&srv);
    if ((rc = server_start(&srv)) < 0 || (rc = server_run(&srv, fds, tls_fds)) < 0) {
        fprintf(stderr, "ringcast: cannot start workers: %s\n", strerror(-rc));
        return 1;
    }
    char want[256], got[256];
    config_feature_names(srv.cfg.features, want, sizeof(want));
    config_feature_names(srv.features, got, sizeof(got));
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    fprintf(stderr, "ringcast: io_uring features: %s (allowed: %s)\n", got, want);
    fprintf(stderr,
            "ringcast: %d workers, up to %u connections each (--max-conns %u, ulimit -n %llu%s)\n",
            srv.nworkers, srv.workers[0].nslots - 64 < srv.cfg.max_conns ? srv.workers[0].nslots - 64
                                                                        : srv.cfg.max_conns,
            srv.cfg.max_conns, (unsigned long long)rl.rlim_cur,
            (srv.features & FEAT_DIRECT) ? ", direct descriptors: per worker"
                                         : ", regular descriptors: shared by all workers");
    if (srv.cfg.fault_drop)
        fprintf(stderr, "ringcast: WARNING: --fault-drop %u: every %uth delivery is skipped on "
                        "purpose, for testing\n",
                srv.cfg.fault_drop, srv.cfg.fault_drop);
    if (srv.tls)
        fprintf(stderr, "ringcast: TLS (https, wss) on %s:%d\n", srv.cfg.bind, srv.tls_port);
    fprintf(stderr, "ringcast: listening on %s:%d\n", srv.cfg.bind, srv.port);

    sigdelset(&set, SIGPIPE);
    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "ringcast: %s: draining for up to %u s\n", strsignal(sig), srv.cfg.drain);
    atomic_store(&srv.stop, 1);
    for (int i = 0; i < srv.nworkers; i++) {
        uint64_t one = 1; /* wake workers that sleep on an eventfd */
        ssize_t r = write(srv.workers[i].efd, &one, sizeof(one));
        (void)r;
    }
    server_wait(&srv);
    for (int i = 0; i < srv.nworkers; i++) {
        close(fds[i]);
        if (tls_fds)
            close(tls_fds[i]);
    }
    free(fds);
    free(tls_fds);
    tls_server_free(srv.tls);
    tls_thread_done();
    fprintf(stderr, "ringcast: stopped\n");
    return 0;
}
