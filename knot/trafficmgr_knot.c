/* mod-trafficmgr: Knot DNS answers the names of a trafficmgr configuration.
 *
 * A small query module, compiled against the installed Knot headers
 * (libknot-dev's knot/module.h), that links libtrafficmgr.so through its
 * public C API (include/trafficmgr.h). Knot's structures (knotd_qdata_t,
 * knot_pkt_t, knot_rrset_t) are read and written here, in C, against the
 * headers of the Knot that loads it; the library never sees them.
 *
 * Configuration (knot.conf):
 *
 *   server:
 *       edns-client-subnet: on          # so the decision sees ECS
 *   mod-trafficmgr:
 *     - id: tm
 *       config: /etc/trafficmgr/trafficmgr.toml
 *   zone:
 *     - domain: trafficmanager.example   # holds SOA and NS
 *       module: mod-trafficmgr/tm
 *
 * Every module instance (one per zone that names it) holds the engine of
 * its config file through the library's registry of shared engines
 * (tm_engine_open_shared_host): one engine, one set of probes and one file
 * watch per config file in knotd, whatever the number of zones, and kept
 * across `knotc reload` (Knot creates the new instances before it drops the
 * old). The engine's log lines go to Knot's log through knotd_mod_log of
 * the newest instance holding it.
 *
 * Per query (PREANSWER stage), for names below the zone apex, of class IN
 * or ANY:
 *   - records from the library: put into the answer, AA set, state HIT
 *     (Knot's zone is not consulted for that name);
 *   - NODATA from the library: state NODATA; Knot then answers NODATA with
 *     the zone's SOA, or the zone's own records if it has the name;
 *   - NXDOMAIN, or a name under none of the config's zones: left to Knot,
 *     which answers from its zone (NXDOMAIN with the zone's SOA when it
 *     does not have the name).
 * An instance whose config file does not load (missing, unreadable,
 * invalid) stays in the zone without an engine and turns the zone's
 * NXDOMAIN into SERVFAIL (failing the load would leave the zone to answer
 * every name of the config NXDOMAIN); `knotc reload` tries the file again.
 *
 * Knot's DNSSEC signing does not cover the module's answers (no RRSIG, and
 * the zone's NSEC chain denies the config's names): the zone must be
 * unsigned; the module warns at load when it is not.
 *
 * The apex is always Knot's own (the zone's SOA and NS). When the query
 * carries EDNS Client Subnet (and `edns-client-subnet: on`), the decision
 * uses it and the reply's scope is the one the decision depended on (at
 * most the option's family length: 32 for an IPv4 option).
 */

#include <limits.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include <knot/module.h>

#include "trafficmgr.h"

#define MOD_CONFIG "\x06" "config"

/* Module section schema: `id` is Knot's own; `config` is the TOML file. */
static const yp_item_t trafficmgr_conf[] = {
	{ MOD_CONFIG, YP_TSTR, YP_VNONE },
	{ NULL }
};

static int trafficmgr_conf_check(knotd_conf_check_args_t *args)
{
	knotd_conf_t path = knotd_conf_check_item(args, MOD_CONFIG);
	if (path.count == 0 || path.single.string == NULL || path.single.string[0] == '\0') {
		args->err_str = "no trafficmgr configuration file (config)";
		return KNOT_EINVAL;
	}
	return KNOT_EOK;
}

/* One instance: the module it belongs to (for its log) and the engine. */
typedef struct {
	knotd_mod_t *mod;
	tm_host host;
	const tm_engine *engine;
} tm_knot_ctx;

/* The library's log hook: one Knot log line per line of the message, cut
 * to what knotd_mod_log keeps (512 octets with its prefix). */
static void log_line(void *userdata, uint32_t level, const char *msg, size_t msg_len)
{
	knotd_mod_t *mod = userdata;
	int prio = level == TM_LOG_ERROR ? LOG_ERR
	         : level == TM_LOG_WARN  ? LOG_WARNING
	         : level == TM_LOG_INFO  ? LOG_INFO
	                                 : LOG_DEBUG;
	const size_t chunk = 400;
	while (msg_len > 0) {
		const char *nl = memchr(msg, '\n', msg_len);
		size_t len = nl != NULL ? (size_t)(nl - msg) : msg_len;
		size_t rest = len;
		const char *p = msg;
		do {
			size_t n = rest > chunk ? chunk : rest;
			knotd_mod_log(mod, prio, "%.*s", (int)n, p);
			p += n;
			rest -= n;
		} while (rest > 0);
		if (nl == NULL) {
			break;
		}
		msg_len -= len + 1;
		msg = nl + 1;
	}
}

/* Records of the answer section, gathered into RRsets (one per run of the
 * same type) and put into the reply. */
typedef struct {
	knot_pkt_t *pkt;
	const knot_dname_t *owner;
	knot_rrset_t *rr;
	int ret;
} answer_ctx;

static int flush(answer_ctx *a)
{
	if (a->rr == NULL) {
		return KNOT_EOK;
	}
	knot_rrset_t *rr = a->rr;
	a->rr = NULL;
	int ret = knot_pkt_put(a->pkt, KNOT_COMPR_HINT_QNAME, rr, KNOT_PF_FREE);
	if (ret != KNOT_EOK) {
		knot_rrset_free(rr, &a->pkt->mm);
	}
	return ret;
}

static int32_t put_record(void *userdata, const tm_record *r)
{
	answer_ctx *a = userdata;
	if (r->section != TM_SECTION_ANSWER) {
		return 0; /* the zone's SOA comes from Knot's zone */
	}
	if (a->rr != NULL && a->rr->type != r->rtype) {
		a->ret = flush(a);
		if (a->ret != KNOT_EOK) {
			return 1;
		}
	}
	if (a->rr == NULL) {
		a->rr = knot_rrset_new(a->owner, r->rtype, KNOT_CLASS_IN, r->ttl, &a->pkt->mm);
		if (a->rr == NULL) {
			a->ret = KNOT_ENOMEM;
			return 1;
		}
	}
	if (r->rdata_wire_len > UINT16_MAX) {
		a->ret = KNOT_ESPACE;
		return 1;
	}
	a->ret = knot_rrset_add_rdata(a->rr, r->rdata_wire, (uint16_t)r->rdata_wire_len,
	                              &a->pkt->mm);
	return a->ret == KNOT_EOK ? 0 : 1;
}

static void set_address(tm_address *out, const struct sockaddr_storage *ss)
{
	if (ss == NULL) {
		return;
	}
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
		out->family = TM_FAMILY_IPV4;
		memcpy(out->bytes, &in->sin_addr, 4);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
		out->family = TM_FAMILY_IPV6;
		memcpy(out->bytes, &in6->sin6_addr, 16);
	}
}

/* Class IN, or ANY (answered as IN, as Knot answers its zone and as the
 * library's wire front does). */
static bool class_in_or_any(knotd_qdata_t *qdata)
{
	uint16_t qclass = knot_pkt_qclass(qdata->query);
	return qclass == KNOT_CLASS_IN || qclass == KNOT_CLASS_ANY;
}

/* The scope written back: the decision's, at most the option's family
 * length (Knot refuses to write a larger one, and the reply would be
 * FORMERR). It can be larger when the option's source prefix is 0 and the
 * decision used the resolver's own address, of the other family. */
static uint8_t ecs_scope(const knot_edns_client_subnet_t *ecs, uint32_t scope)
{
	uint32_t max = ecs->family == KNOT_ADDR_FAMILY_IPV4 ? 32 : 128;
	return (uint8_t)(scope < max ? scope : max);
}

static knotd_in_state_t trafficmgr_answer(knotd_in_state_t state, knot_pkt_t *pkt,
                                          knotd_qdata_t *qdata, knotd_mod_t *mod)
{
	/* Answered by an earlier module. */
	if (state == KNOTD_IN_STATE_HIT || state == KNOTD_IN_STATE_FOLLOW) {
		return state;
	}
	const tm_knot_ctx *ctx = knotd_mod_ctx(mod);
	const knot_dname_t *qname = knot_pkt_qname(qdata->query);
	const knot_dname_t *apex = knotd_qdata_zone_name(qdata);
	if (ctx == NULL || ctx->engine == NULL || qname == NULL || !class_in_or_any(qdata) ||
	    (apex != NULL && knot_dname_is_equal(qname, apex))) {
		return state; /* the apex is the zone's */
	}

	char text[KNOT_DNAME_TXT_MAXLEN + 1];
	if (knot_dname_to_str(text, qname, sizeof(text)) == NULL) {
		return state;
	}
	tm_query q;
	memset(&q, 0, sizeof(q));
	q.struct_size = sizeof(q);
	q.qtype = knot_pkt_qtype(qdata->query);
	q.qname = text;
	q.qname_len = strlen(text);
	set_address(&q.client, knotd_qdata_remote_addr(qdata));
	const knot_edns_client_subnet_t *ecs = qdata->ecs;
	if (ecs != NULL && ecs->source_len > 0) {
		if (ecs->family == KNOT_ADDR_FAMILY_IPV4 && ecs->source_len <= 32) {
			q.ecs.family = TM_FAMILY_IPV4;
			memcpy(q.ecs.bytes, ecs->address, 4);
			q.ecs_source_prefix = ecs->source_len;
		} else if (ecs->family == KNOT_ADDR_FAMILY_IPV6 && ecs->source_len <= 128) {
			q.ecs.family = TM_FAMILY_IPV6;
			memcpy(q.ecs.bytes, ecs->address, 16);
			q.ecs_source_prefix = ecs->source_len;
		}
	}

	answer_ctx a = { .pkt = pkt, .owner = qname, .rr = NULL, .ret = KNOT_EOK };
	tm_lookup_info info;
	memset(&info, 0, sizeof(info));
	tm_result r = tm_engine_lookup(ctx->engine, &q, put_record, &a, &info);
	if (r == TM_RESULT_OK && a.ret == KNOT_EOK) {
		a.ret = flush(&a);
	} else if (a.rr != NULL) {
		knot_rrset_free(a.rr, &pkt->mm);
		a.rr = NULL;
	}
	if (a.ret == KNOT_ESPACE) {
		return KNOTD_IN_STATE_TRUNC;
	}
	if ((r != TM_RESULT_OK && r != TM_RESULT_CALLBACK_ABORTED) || a.ret != KNOT_EOK) {
		/* A name the library cannot take (e.g. escapes), or no memory:
		 * Knot's zone answers. */
		return a.ret == KNOT_EOK ? state : KNOTD_IN_STATE_ERROR;
	}
	if (!(info.flags & TM_LOOKUP_AUTHORITATIVE)) {
		return state; /* under none of the config's zones */
	}
	if (qdata->ecs != NULL) {
		qdata->ecs->scope_len = ecs_scope(qdata->ecs, info.scope_prefix);
	}
	if (info.rcode == KNOT_RCODE_NOERROR && info.answer_count > 0) {
		knot_wire_set_aa(pkt->wire);
		return KNOTD_IN_STATE_HIT;
	}
	if (info.rcode == KNOT_RCODE_NOERROR) {
		return KNOTD_IN_STATE_NODATA;
	}
	return state; /* NXDOMAIN: Knot's zone, with its SOA */
}

/* An instance whose config did not load (ANSWER stage, after Knot looked
 * the name up in its zone): a name the zone does not have may be one of the
 * config's, so it is SERVFAIL rather than NXDOMAIN. */
static knotd_in_state_t trafficmgr_unavailable(knotd_in_state_t state, knot_pkt_t *pkt,
                                               knotd_qdata_t *qdata, knotd_mod_t *mod)
{
	(void)pkt;
	(void)mod;
	if (state != KNOTD_IN_STATE_MISS || !class_in_or_any(qdata)) {
		return state;
	}
	qdata->rcode = KNOT_RCODE_SERVFAIL;
	return KNOTD_IN_STATE_ERROR;
}

/* A signed zone: the module's answers carry no RRSIG, and the zone's NSEC
 * chain (built from the zone file) denies the config's names, so validating
 * resolvers fail them. Knot serves on; the log says so. */
static void warn_if_signed(knotd_mod_t *mod)
{
	knotd_conf_t signing = knotd_conf_zone(mod, (const yp_name_t *)"\x0e" "dnssec-signing",
	                                       knotd_mod_zone(mod));
	if (signing.count > 0 && signing.single.boolean) {
		knotd_mod_log(mod, LOG_WARNING, "the zone is signed (dnssec-signing: on): the "
		              "module's answers have no RRSIG and the zone's NSEC records deny "
		              "the config's names, so validating resolvers fail them; serve "
		              "them from an unsigned zone");
	}
	knotd_conf_free(&signing);
}

static int trafficmgr_load(knotd_mod_t *mod)
{
	if (tm_abi_version() != TM_ABI_VERSION) {
		knotd_mod_log(mod, LOG_ERR, "libtrafficmgr ABI %u, this module was built for %u",
		              tm_abi_version(), (unsigned)TM_ABI_VERSION);
		return KNOT_ENOTSUP;
	}
	knotd_conf_t conf = knotd_conf_mod(mod, MOD_CONFIG);
	const char *path = conf.single.string;
	if (path == NULL || path[0] == '\0') {
		knotd_mod_log(mod, LOG_ERR, "no trafficmgr configuration file (config)");
		return KNOT_EINVAL;
	}
	tm_knot_ctx *ctx = calloc(1, sizeof(*ctx));
	if (ctx == NULL) {
		return KNOT_ENOMEM;
	}
	ctx->mod = mod;
	ctx->host.struct_size = sizeof(ctx->host);
	ctx->host.userdata = mod;
	ctx->host.log = log_line;
	char err[TM_ERRBUF_SIZE];
	err[0] = '\0';
	warn_if_signed(mod);
	if (path[0] != '/') {
		knotd_mod_log(mod, LOG_WARNING, "the config path %s is relative: it is taken "
		              "from knotd's working directory (/ under systemd); "
		              "write it absolute", path);
	}
	tm_result r = tm_engine_open_shared_host(path, strlen(path), &ctx->host, err,
	                                         sizeof(err), &ctx->engine);
	if (r != TM_RESULT_OK) {
		/* Failing the load would leave the zone without the module: Knot
		 * would answer every name of the config NXDOMAIN, with AA, and
		 * resolvers would cache that. Loaded without an engine, the
		 * instance turns the zone's NXDOMAIN into SERVFAIL instead. */
		ctx->engine = NULL;
		knotd_mod_log(mod, LOG_ERR, "cannot serve %s: %s", path, tm_result_str(r));
		log_line(mod, TM_LOG_ERROR, err, strlen(err));
		int ret = knotd_mod_in_hook(mod, KNOTD_STAGE_ANSWER, trafficmgr_unavailable);
		if (ret != KNOT_EOK) {
			free(ctx);
			return ret;
		}
		knotd_mod_ctx_set(mod, ctx);
		knotd_mod_log(mod, LOG_ERR, "answering SERVFAIL for the names the zone does "
		              "not have until %s loads (fix it, then knotc reload)", path);
		return KNOT_EOK;
	}
	int ret = knotd_mod_in_hook(mod, KNOTD_STAGE_PREANSWER, trafficmgr_answer);
	if (ret != KNOT_EOK) {
		tm_engine_release_shared_host(ctx->engine, &ctx->host);
		free(ctx);
		return ret;
	}
	knotd_mod_ctx_set(mod, ctx);
	knotd_mod_log(mod, LOG_INFO, "serving %s (%s)", path, tm_version());
	return KNOT_EOK;
}

static void trafficmgr_unload(knotd_mod_t *mod)
{
	tm_knot_ctx *ctx = knotd_mod_ctx(mod);
	if (ctx == NULL) {
		return;
	}
	/* The last holder's release stops and joins the engine's threads. */
	if (ctx->engine != NULL) {
		tm_engine_release_shared_host(ctx->engine, &ctx->host);
	}
	knotd_mod_ctx_set(mod, NULL);
	free(ctx);
}

KNOTD_MOD_API(trafficmgr, KNOTD_MOD_FLAG_SCOPE_ZONE, trafficmgr_load, trafficmgr_unload,
              trafficmgr_conf, trafficmgr_conf_check);
