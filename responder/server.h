/* The trustgate server: worker threads with one libuv loop each, a main
 * loop for signals, and the configuration they share.
 *
 * Life cycle: tg_server_new -> tg_server_run (blocks until SIGTERM/SIGINT
 * and the drain are done) -> tg_server_free. */
#ifndef TG_RESPONDER_SERVER_H
#define TG_RESPONDER_SERVER_H

#include "common/err.h"
#include "config/config.h"

typedef struct tg_server tg_server_t;

/* Creates a server for cfg and binds every listen address of cfg once per
 * worker (SO_REUSEPORT), so that address errors surface here, before any
 * thread starts. Takes ownership of cfg in every case (it is freed on
 * failure). config_path is the file to re-read on SIGHUP (NULL: the
 * built-in default, which a reload keeps); it is copied.
 * Returns 0 and sets *out_srv (free with tg_server_free), or a TG_E* code
 * after logging why. */
TG_WUR int tg_server_new(tg_config_t *cfg, const char *config_path, tg_server_t **out_srv);

/* Starts the workers and runs the main loop: SIGHUP reloads the
 * configuration (a bad file keeps the current one and logs why), SIGTERM or
 * SIGINT stops accepting, lets in-flight answers finish and returns once all
 * workers have exited (connections still busy after 4.5 s are cut).
 * Returns 0 after a clean drain, or a TG_E* code if the server could not
 * start. */
TG_WUR int tg_server_run(tg_server_t *srv);

/* Asks a running server to drain and stop, as SIGTERM does. Thread-safe;
 * for tests and embedding. */
void tg_server_request_stop(tg_server_t *srv);

/* Frees the server. Must not be called while tg_server_run is running.
 * NULL is fine. */
void tg_server_free(tg_server_t *srv);

#endif
