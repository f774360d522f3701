/* Resource limits of the webhook's HTTPS server, as pure bookkeeping (no
 * sockets, no clock, no locks: the server brings those).
 *
 * Body budget: one byte count shared by every connection. A request
 * reserves its body (Content-Length at once, or chunk by chunk) before it
 * is buffered, and gives it back when the request ends; a reservation that
 * would pass the budget fails, and the server answers 503 at once instead
 * of buffering. Lock-free (atomics).
 *
 * Connection table: every open connection with its phase and deadline.
 * Phases, and the deadline each one gets from the server:
 *   NEW      accepted, no complete request yet (TLS handshake, headers)
 *   READING  headers complete, body being read
 *   BUSY     request complete: being answered
 *   IDLE     answered, kept alive for the next request
 *   CLOSING  shut down by the server, waiting for MHD to close it
 * When the table holds more live (not CLOSING) connections than the limit,
 * zw_conntab_victim picks the one to close: the oldest IDLE, else the
 * oldest NEW, else the oldest READING; never a BUSY one. So idle
 * connections can never keep a new client out: it takes the place of the
 * one that has waited longest without a request in progress. Not
 * thread-safe: the caller serialises. */
#ifndef ZW_RESLIMITS_H
#define ZW_RESLIMITS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct zw_budget {
	atomic_size_t used;
	size_t cap;
};

/* Sets up a budget of cap bytes, none used. */
void zw_budget_init(struct zw_budget *b, size_t cap);

/* Reserves n bytes of b. Returns 0, or -EAGAIN (nothing reserved) when
 * that would pass the budget. */
int zw_budget_take(struct zw_budget *b, size_t n);

/* Gives back n bytes reserved earlier with zw_budget_take. */
void zw_budget_give(struct zw_budget *b, size_t n);

/* Returns the bytes reserved now. */
size_t zw_budget_used(struct zw_budget *b);

enum zw_conn_phase {
	ZW_CONN_NEW = 0,
	ZW_CONN_READING,
	ZW_CONN_BUSY,
	ZW_CONN_IDLE,
	ZW_CONN_CLOSING,
};

/* One connection; the caller allocates it and keeps it while it is in a
 * table. */
struct zw_conn {
	int fd;
	enum zw_conn_phase phase;
	int64_t since_ms;    /* when the phase began */
	int64_t deadline_ms; /* close when now >= deadline; 0 = none */
	size_t slot;         /* index in the table (table-private) */
};

struct zw_conntab {
	struct zw_conn **v;
	size_t n;
	size_t cap;
	size_t live; /* entries not CLOSING */
};

/* Allocates room for cap entries in t. Returns 0 or -ENOMEM. */
int zw_conntab_init(struct zw_conntab *t, size_t cap);

/* Frees t's storage (not the entries, which the caller owns). */
void zw_conntab_free(struct zw_conntab *t);

/* Adds c (borrowed until removed) in phase NEW since now_ms with the given
 * deadline. Returns 0 or -ENOSPC when the table is full. */
int zw_conntab_add(struct zw_conntab *t, struct zw_conn *c, int64_t now_ms, int64_t deadline_ms);

/* Removes c from t; c must be in t. */
void zw_conntab_remove(struct zw_conntab *t, struct zw_conn *c);

/* Moves c to phase p since now_ms with a new deadline (0 = none). A CLOSING
 * connection stays CLOSING. */
void zw_conntab_set(struct zw_conntab *t, struct zw_conn *c, enum zw_conn_phase p, int64_t now_ms,
                    int64_t deadline_ms);

/* Returns the connection to close to make room (see above; not yet
 * CLOSING), or NULL when every live connection is BUSY. Borrowed. */
struct zw_conn *zw_conntab_victim(const struct zw_conntab *t);

/* Returns a live connection whose deadline has passed at now_ms, or NULL.
 * Borrowed; mark it CLOSING before asking again. */
struct zw_conn *zw_conntab_expired(const struct zw_conntab *t, int64_t now_ms);

#endif
