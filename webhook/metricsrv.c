/* zerowire-webhook plain metrics listener (see metricsrv.h). */
#include "metricsrv.h"

#include "whserver.h"

#include <errno.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct zw_metricsrv {
	struct MHD_Daemon *d;
	struct zw_wh_metrics *m;
	void (*refresh)(void *arg);
	void *arg;
	int port;
};

/* Answers with a copy of the static text msg. */
static enum MHD_Result answer_text(struct MHD_Connection *c, unsigned status, const char *msg)
{
	char *body = strdup(msg);
	if (!body)
		return MHD_NO;
	return zw_wh_server_send_owned(c, status, body, strlen(body), "text/plain");
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_len, void **con_cls)
{
	struct zw_metricsrv *s = cls;
	char *text = NULL;
	size_t len = 0;

	(void)version;
	(void)upload;
	if (!*con_cls) { /* first call: headers only */
		*con_cls = s;
		return MHD_YES;
	}
	if (*upload_len != 0) {
		*upload_len = 0; /* bodies are ignored */
		return MHD_YES;
	}
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return answer_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
	if (strcmp(url, "/healthz") == 0)
		return answer_text(c, MHD_HTTP_OK, "ok\n");
	if (strcmp(url, "/metrics") != 0)
		return answer_text(c, MHD_HTTP_NOT_FOUND, "not found\n");
	if (s->refresh)
		s->refresh(s->arg);
	if (zw_wh_metrics_render(s->m, &text, &len) < 0)
		return answer_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
	return zw_wh_server_send_owned(c, MHD_HTTP_OK, text, len, "text/plain; version=0.0.4");
}

int zw_metricsrv_start(const char *listen, struct zw_wh_metrics *m, void (*refresh)(void *arg),
                       void *arg, struct zw_metricsrv **out)
{
	struct sockaddr_storage ss;
	struct zw_metricsrv *s;
	int v6 = 0;
	const union MHD_DaemonInfo *info;

	if (zw_wh_server_parse_listen(listen, &ss, &v6) < 0)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->m = m;
	s->refresh = refresh;
	s->arg = arg;
	s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
	                                (v6 ? MHD_USE_IPv6 : 0),
	                        0, NULL, NULL, handle, s, MHD_OPTION_SOCK_ADDR,
	                        (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT, 64u,
	                        MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
	if (!s->d) {
		free(s);
		return -EADDRINUSE;
	}
	info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
	s->port = info ? info->port : 0;
	*out = s;
	return 0;
}

int zw_metricsrv_port(const struct zw_metricsrv *s)
{
	return s->port;
}

void zw_metricsrv_stop(struct zw_metricsrv *s)
{
	if (!s)
		return;
	MHD_stop_daemon(s->d);
	free(s);
}
