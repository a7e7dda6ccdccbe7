/* SPDX-License-Identifier: MIT */
/*
 * sim.c - the simulation driver: points whose values are generated signals
 * (sine, ramp, square, random walk, random, counter, constant, integrate).
 *
 * It exists for demos, tests and the benchmark, and as the reference for
 * how a driver uses the host table. Points with the same interval share one
 * host timer; each tick computes the group into a buffer allocated at
 * create() and submits it with one call, so a tick does not allocate.
 *
 * Everything runs on the loop thread; the driver has no I/O of its own.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "m2m/plugin-util.h"
#include "m2m/plugin.h"
#include "sim-signal.h"

#define SIM_VERSION "1.0.0"

/* Timers count in milliseconds; see timer_start. */
#define US_PER_MS M2M_US_PER_MS

struct sim_point {
	struct sim_signal sig;
	uint32_t id;
	int64_t interval_us;
	size_t input; /* index of the integrate input; SIZE_MAX when none */
};

/* The points that share one interval, and therefore one timer. */
struct sim_group {
	struct sim *sim;
	int64_t interval_us;
	m2m_timer *timer;
	size_t n;
	size_t *members;          /* indexes into sim->points */
	struct m2m_reading *buf;  /* n readings, point ids filled in at create */
	bool submit_failed;       /* so that a failing submit logs once */
};

/* Maps a point id to its index, sorted by id, for writes. */
struct sim_index {
	uint32_t id;
	size_t idx;
};

struct sim {
	m2m_host *host;
	const struct m2m_host_api *api;
	struct sim_point *points;
	size_t n_points;
	struct sim_index *index;
	struct sim_group *groups;
	size_t n_groups;
	int64_t t0_us; /* mono_us at start() */
	bool running;
};

/* Config parsing state that create() needs only until the input links. */
struct sim_parse {
	char **names;  /* each point's full name, for integrate inputs */
	const char **inputs; /* each point's input name (into the config), or NULL */
	const cJSON **items; /* each point's table, for error locations */
};

static void sim_stop(void *driver);

static void sim_free(struct sim *sim)
{
	if (!sim)
		return;
	sim_stop(sim);
	for (size_t i = 0; i < sim->n_groups; i++) {
		free(sim->groups[i].members);
		free(sim->groups[i].buf);
	}
	free(sim->groups);
	free(sim->index);
	free(sim->points);
	free(sim);
}

static void sim_parse_done(struct sim_parse *ps, size_t n)
{
	if (ps->names)
		for (size_t i = 0; i < n; i++)
			free(ps->names[i]);
	free(ps->names);
	free(ps->inputs);
	free(ps->items);
}

/*
 * Reads the sim keys of one point table. Only the keys that apply to the
 * point's signal are read, so that a key that does nothing (a period on a
 * counter) is reported by the host as unknown instead of passing silently.
 */
static int parse_signal(struct sim *sim, const cJSON *obj, struct sim_point *p,
                        const char **ret_input)
{
	const struct m2m_host_api *api = sim->api;
	m2m_host *host = sim->host;
	struct sim_signal *s = &p->sig;
	int kind, r;

	r = api->cfg_enum(host, obj, "signal", sim_kind_names, -1, &kind);
	if (r < 0)
		return r;
	if (r == 0)
		return M2M_CFG_ERROR(sim, obj, "missing key 'signal' (one of sine, ramp, "
		                     "square, random_walk, random, counter, constant, integrate)");
	sim_signal_init(s, kind);

	r = api->cfg_duration(host, obj, "interval", 1000 * US_PER_MS, &p->interval_us);
	if (r < 0)
		return r;
	if (p->interval_us < US_PER_MS || p->interval_us % US_PER_MS != 0)
		return M2M_CFG_ERROR(sim, cJSON_GetObjectItemCaseSensitive(obj, "interval"),
		                     "expected a whole number of milliseconds, at least 1ms");

	r = m2m_cfg_number(api, host, obj, "base", 0.0, &s->base);
	if (r < 0)
		return r;

	switch (kind) {
	case SIM_SINE:
	case SIM_RAMP:
	case SIM_SQUARE:
		r = api->cfg_duration(host, obj, "period", 60000 * US_PER_MS, &s->period_us);
		if (r < 0)
			return r;
		if (s->period_us < US_PER_MS)
			return M2M_CFG_ERROR(sim, cJSON_GetObjectItemCaseSensitive(obj, "period"),
			                     "expected a period of at least 1ms");
		return m2m_cfg_number(api, host, obj, "amplitude", 1.0, &s->amplitude);

	case SIM_RANDOM:
		r = m2m_cfg_number(api, host, obj, "amplitude", 1.0, &s->amplitude);
		break;

	case SIM_RANDOM_WALK:
		r = m2m_cfg_number(api, host, obj, "step", 0.1, &s->step);
		if (r == 0 && !(s->step >= 0.0))
			return M2M_CFG_ERROR(sim, cJSON_GetObjectItemCaseSensitive(obj, "step"),
			                     "expected a step >= 0 for a random_walk");
		break;

	case SIM_COUNTER:
		r = m2m_cfg_number(api, host, obj, "step", 1.0, &s->step);
		if (r == 0)
			r = m2m_cfg_number(api, host, obj, "value", s->base, &s->initial);
		break;

	case SIM_CONSTANT:
		return m2m_cfg_number(api, host, obj, "value", s->base, &s->initial);

	case SIM_INTEGRATE:
		r = m2m_cfg_number(api, host, obj, "value", s->base, &s->initial);
		if (r == 0)
			r = m2m_cfg_number(api, host, obj, "rate_on", 1.0, &s->rate_on);
		if (r == 0)
			r = m2m_cfg_number(api, host, obj, "rate_off", -1.0, &s->rate_off);
		if (r < 0)
			return r;
		r = api->cfg_string(host, obj, "input", NULL, ret_input);
		if (r < 0)
			return r;
		if (r == 0)
			return M2M_CFG_ERROR(sim, obj, "an integrate signal needs 'input', "
			                     "the name of another point of this driver");
		break;

	default:
		return -EINVAL;
	}
	if (r < 0)
		return r;

	/* random_walk, random, counter and integrate take optional bounds. */
	r = m2m_cfg_number(api, host, obj, "low", -INFINITY, &s->low);
	if (r == 0)
		r = m2m_cfg_number(api, host, obj, "high", INFINITY, &s->high);
	if (r < 0)
		return r;
	if (s->low > s->high)
		return M2M_CFG_ERROR(sim, cJSON_GetObjectItemCaseSensitive(obj, "low"),
		                     "expected low <= high, got low %g > high %g", s->low, s->high);
	return 0;
}

static int parse_points(struct sim *sim, const cJSON *points, uint64_t seed,
                        struct sim_parse *ps)
{
	const struct m2m_host_api *api = sim->api;
	m2m_host *host = sim->host;
	const cJSON *obj;
	size_t n = 0;
	int r;

	cJSON_ArrayForEach(obj, points) {
		struct sim_point *p = &sim->points[n];
		const char *name;

		if (!cJSON_IsObject(obj))
			return M2M_CFG_ERROR(sim, obj, "expected a point table");
		r = api->declare_point(host, NULL, obj, &p->id);
		if (r < 0)
			return r;
		/*
		 * The host parsed and checked 'name' in declare_point; reading it
		 * again only gives this driver the string that integrate inputs
		 * refer to. There is no host function to look a name up.
		 */
		r = api->cfg_string(host, obj, "name", NULL, &name);
		if (r < 0)
			return r;
		if (r == 0 || !name)
			return M2M_CFG_ERROR(sim, obj, "missing key 'name'");
		ps->names[n] = strdup(name);
		if (!ps->names[n])
			return -ENOMEM;
		ps->items[n] = obj;
		p->input = SIZE_MAX;
		sim->n_points = ++n;

		r = parse_signal(sim, obj, p, &ps->inputs[n - 1]);
		if (r < 0)
			return r;
		sim_signal_prepare(&p->sig, seed, name);
	}
	return 0;
}

/* Turns each integrate input name into the index of a point of this instance. */
static int link_inputs(struct sim *sim, const struct sim_parse *ps)
{
	for (size_t i = 0; i < sim->n_points; i++) {
		const char *want = ps->inputs[i];
		size_t j;

		if (!want)
			continue;
		for (j = 0; j < sim->n_points; j++)
			if (strcmp(ps->names[j], want) == 0)
				break;
		if (j == sim->n_points)
			return M2M_CFG_ERROR(sim, ps->items[i],
			                     "'input' names \"%s\", which is not a point "
			                     "of this sim driver", want);
		if (j == i)
			return M2M_CFG_ERROR(sim, ps->items[i],
			                     "'input' of \"%s\" names the point itself", want);
		sim->points[i].input = j;
	}
	return 0;
}

static int index_cmp(const void *a, const void *b)
{
	const struct sim_index *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

/*
 * Groups the points by interval and allocates each group's buffer now, so
 * that ticks never allocate.
 */
static int build_groups(struct sim *sim)
{
	size_t *group_of;
	int r = -ENOMEM;

	sim->groups = calloc(sim->n_points, sizeof(*sim->groups));
	group_of = calloc(sim->n_points, sizeof(*group_of));
	sim->index = calloc(sim->n_points, sizeof(*sim->index));
	if (!sim->groups || !group_of || !sim->index)
		goto out;

	/* Distinct intervals are few in practice; a linear search is enough. */
	for (size_t i = 0; i < sim->n_points; i++) {
		size_t g;

		for (g = 0; g < sim->n_groups; g++)
			if (sim->groups[g].interval_us == sim->points[i].interval_us)
				break;
		if (g == sim->n_groups) {
			sim->groups[g].sim = sim;
			sim->groups[g].interval_us = sim->points[i].interval_us;
			sim->n_groups++;
		}
		group_of[i] = g;
		sim->groups[g].n++;
	}
	for (size_t g = 0; g < sim->n_groups; g++) {
		struct sim_group *grp = &sim->groups[g];

		grp->members = calloc(grp->n, sizeof(*grp->members));
		grp->buf = calloc(grp->n, sizeof(*grp->buf));
		if (!grp->members || !grp->buf)
			goto out;
		grp->n = 0;
	}
	for (size_t i = 0; i < sim->n_points; i++) {
		struct sim_group *grp = &sim->groups[group_of[i]];

		grp->members[grp->n] = i;
		grp->buf[grp->n] = (struct m2m_reading){
			.point = sim->points[i].id,
			.quality = M2M_QUALITY_GOOD,
		};
		grp->n++;
		sim->index[i] = (struct sim_index){ .id = sim->points[i].id, .idx = i };
	}
	qsort(sim->index, sim->n_points, sizeof(*sim->index), index_cmp);
	r = 0;
out:
	free(group_of);
	return r;
}

static int sim_create(m2m_host *host, const struct m2m_host_api *api,
                      const struct cJSON *config, void **ret_driver)
{
	struct sim_parse ps = { 0 };
	const cJSON *points;
	struct sim *sim;
	int64_t seed;
	int n = 0, r;

	/* Every host function used here is in ABI 1.0; check the table has them. */
	if (!api || !M2M_HAS_FIELD(struct m2m_host_api, api->struct_size, write_done))
		return -EPROTO;

	sim = calloc(1, sizeof(*sim));
	if (!sim)
		return -ENOMEM;
	sim->host = host;
	sim->api = api;

	r = api->cfg_int(host, config, "seed", 1, INT64_MIN, INT64_MAX, &seed);
	if (r < 0)
		goto fail;

	points = api->cfg_item(host, config, "points");
	if (!points || !cJSON_IsArray(points) || cJSON_GetArraySize(points) == 0) {
		r = M2M_CFG_ERROR(sim, points ? points : config,
		                  "expected 'points', a non-empty array of point tables "
		                  "([[drivers.NAME.points]])");
		goto fail;
	}
	n = cJSON_GetArraySize(points);

	r = -ENOMEM;
	sim->points = calloc((size_t)n, sizeof(*sim->points));
	ps.names = calloc((size_t)n, sizeof(*ps.names));
	ps.inputs = calloc((size_t)n, sizeof(*ps.inputs));
	ps.items = calloc((size_t)n, sizeof(*ps.items));
	if (!sim->points || !ps.names || !ps.inputs || !ps.items)
		goto fail;

	r = parse_points(sim, points, (uint64_t)seed, &ps);
	if (r < 0)
		goto fail;
	r = link_inputs(sim, &ps);
	if (r < 0)
		goto fail;
	r = build_groups(sim);
	if (r < 0)
		goto fail;

	sim_parse_done(&ps, (size_t)n);
	*ret_driver = sim;
	return 0;

fail:
	sim_parse_done(&ps, (size_t)n);
	sim_free(sim);
	return r < 0 ? r : -EINVAL;
}

static void sim_tick(m2m_timer *timer, void *arg)
{
	struct sim_group *g = arg;
	struct sim *sim = g->sim;
	const struct m2m_host_api *api = sim->api;
	int64_t t_us = api->mono_us(sim->host) - sim->t0_us;
	int64_t ts_us = api->now_us(sim->host);
	int r;

	for (size_t i = 0; i < g->n; i++) {
		struct sim_point *p = &sim->points[g->members[i]];
		double input = p->input != SIZE_MAX ? sim->points[p->input].sig.value : 0.0;

		g->buf[i].ts_us = ts_us;
		g->buf[i].value = sim_signal_next(&p->sig, t_us, input);
	}

	r = api->submit(sim->host, g->buf, g->n);
	if (r < 0 && !g->submit_failed)
		api->log(sim->host, M2M_LOG_WARNING,
		         "submitting %zu readings (interval %" PRId64 "ms) failed: %s",
		         g->n, g->interval_us / US_PER_MS, strerror(-r));
	g->submit_failed = r < 0;
}

static int sim_start(void *driver)
{
	struct sim *sim = driver;
	const struct m2m_host_api *api;
	int r;

	if (!sim)
		return -EINVAL;
	if (sim->running)
		return 0;
	api = sim->api;

	/* Signals are functions of the time since this start. */
	sim->t0_us = api->mono_us(sim->host);
	for (size_t i = 0; i < sim->n_points; i++)
		sim_signal_restart(&sim->points[i].sig);

	for (size_t g = 0; g < sim->n_groups; g++) {
		struct sim_group *grp = &sim->groups[g];
		uint64_t ms = (uint64_t)(grp->interval_us / US_PER_MS);

		grp->submit_failed = false;
		r = api->timer_start(sim->host, ms, ms, sim_tick, grp, &grp->timer);
		if (r < 0) {
			grp->timer = NULL;
			sim->running = true; /* so that sim_stop() stops the ones started */
			sim_stop(sim);
			return r;
		}
	}
	sim->running = true;
	api->log(sim->host, M2M_LOG_INFO, "simulating %zu points on %zu timers",
	         sim->n_points, sim->n_groups);
	return 0;
}

static void sim_stop(void *driver)
{
	struct sim *sim = driver;

	if (!sim || !sim->running)
		return;
	for (size_t g = 0; g < sim->n_groups; g++) {
		sim->api->timer_stop(sim->groups[g].timer);
		sim->groups[g].timer = NULL;
	}
	sim->running = false;
}

static void sim_destroy(void *driver)
{
	sim_free(driver);
}

static int sim_write(void *driver, uint32_t point, double raw_value, m2m_write *req)
{
	struct sim *sim = driver;
	struct sim_index key = { .id = point }, *found;

	found = bsearch(&key, sim->index, sim->n_points, sizeof(*sim->index), index_cmp);
	if (!found) {
		/* The host routes writes by owner, so this is a host bug; still answer. */
		sim->api->write_done(req, -ENOENT, "not a point of this sim driver");
		return 0;
	}
	/* The new state shows in the point's next reading. */
	sim_signal_write(&sim->points[found->idx].sig, raw_value);
	sim->api->write_done(req, 0, NULL);
	return 0;
}

static const struct m2m_driver_ops sim_ops = {
	.struct_size = sizeof(struct m2m_driver_ops),
	.create = sim_create,
	.start = sim_start,
	.stop = sim_stop,
	.destroy = sim_destroy,
	.write = sim_write,
};

static const struct m2m_plugin sim_plugin = {
	.struct_size = sizeof(struct m2m_plugin),
	.abi_major = M2M_ABI_MAJOR,
	/*
	 * The lowest minor this plugin needs, not the header's: it uses nothing
	 * added after 1.0, so a newer header must not make it refuse a 1.0 host.
	 */
	.abi_minor = 0,
	.name = "sim",
	.version = SIM_VERSION,
	.description = "simulated points: sine, ramp, square, random, counter, integrate",
	.ops = &sim_ops,
};

M2M_PLUGIN_ENTRY
{
	(void)host_abi_minor; /* this plugin uses nothing beyond ABI 1.0 */
	if (host_abi_major != M2M_ABI_MAJOR)
		return NULL;
	return &sim_plugin;
}
