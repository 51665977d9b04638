#include "match.h"

#include <stdlib.h>
#include <string.h>

int tw_match_init(struct tw_match *m, const struct tw_config *cfg,
                  uint32_t capacity)
{
    memset(m, 0, sizeof *m);
    m->players = calloc(capacity, sizeof *m->players);
    if (!m->players)
        return -1;
    m->capacity = capacity;
    m->sim.world = (struct tw_vec2){cfg->match.world_width,
                                    cfg->match.world_height};
    m->sim.max_speed = cfg->match.max_speed;
    m->sim.dt = 1.0f / (float)cfg->match.tick_hz;
    m->spawn_origin = (struct tw_vec2){cfg->match.spawn_x, cfg->match.spawn_y};
    m->spawn_size = (struct tw_vec2){cfg->match.spawn_width,
                                     cfg->match.spawn_height};
    tw_quant_init(&m->quant, m->sim.world);
    return TW_OK;
}

void tw_match_free(struct tw_match *m)
{
    free(m->players);
    m->players = NULL;
    m->capacity = 0;
}

int tw_match_find(const struct tw_match *m, uint64_t player_id)
{
    for (uint32_t i = 0; i < m->capacity; i++)
        if (m->players[i].active && m->players[i].player_id == player_id)
            return (int)i;
    return -1;
}

/* A fixed mix of the id picks the spawn point, so a test can predict it. */
static float spawn_coord(uint64_t id, unsigned shift, float origin, float size)
{
    uint64_t h = id * 0x9E3779B97F4A7C15ull;
    h ^= h >> 29;
    float unit = (float)((h >> shift) & 0xFFFF) / 65535.0f;
    return origin + unit * size;
}

int tw_match_add(struct tw_match *m, uint64_t player_id, const char *name)
{
    for (uint32_t i = 0; i < m->capacity; i++) {
        struct tw_player *p = &m->players[i];
        if (p->active)
            continue;
        memset(p, 0, sizeof *p);
        p->active = true;
        p->player_id = player_id;
        p->session = -1;
        strncpy(p->name, name, TW_NAME_MAX);
        p->pos.x = spawn_coord(player_id, 8, m->spawn_origin.x,
                               m->spawn_size.x);
        p->pos.y = spawn_coord(player_id, 32, m->spawn_origin.y,
                               m->spawn_size.y);
        m->active_count++;
        return (int)i;
    }
    return -1;
}

void tw_match_remove(struct tw_match *m, int slot)
{
    if (slot < 0 || (uint32_t)slot >= m->capacity || !m->players[slot].active)
        return;
    memset(&m->players[slot], 0, sizeof m->players[slot]);
    m->players[slot].session = -1;
    m->active_count--;
}

unsigned tw_match_queue_inputs(struct tw_match *m, int slot,
                               const struct tw_msg_input *in,
                               uint64_t now_ns)
{
    struct tw_player *p = &m->players[slot];
    unsigned queued = 0;

    p->ack_snapshot = in->ack_snapshot;
    for (unsigned i = 0; i < in->count; i++) {
        uint32_t seq = in->newest_seq - i;
        if (p->any_applied && seq <= p->last_applied_seq)
            continue;
        unsigned at = seq % TW_INPUT_BUFFER;
        /* A newer input already occupies the cell, so this one is stale. */
        if (p->queued[at] && p->queued_seq[at] >= seq)
            continue;
        p->queued[at] = true;
        p->queued_seq[at] = seq;
        p->queued_input[at] = in->inputs[i];
        p->queued_arrival_ns[at] = now_ns;
        queued++;
    }
    return queued;
}

/* Returns the ring index of the oldest queued input, or -1. */
static int oldest_queued(const struct tw_player *p, unsigned *pending)
{
    int best = -1;
    *pending = 0;
    for (unsigned i = 0; i < TW_INPUT_BUFFER; i++) {
        if (!p->queued[i])
            continue;
        (*pending)++;
        if (best < 0 || p->queued_seq[i] < p->queued_seq[best])
            best = (int)i;
    }
    return best;
}

static void apply_inputs(struct tw_match *m, struct tw_player *p)
{
    unsigned pending;
    int at = oldest_queued(p, &pending);

    /* One input per tick; a second one only when the client ran ahead. */
    unsigned budget = pending > TW_MAX_INPUTS_PER_TICK ? TW_MAX_INPUTS_PER_TICK
                                                       : 1;
    while (at >= 0 && budget-- > 0) {
        uint32_t seq = p->queued_seq[at];
        if (p->any_applied && seq > p->last_applied_seq + 1)
            p->inputs_skipped += seq - p->last_applied_seq - 1;
        tw_sim_step(&m->sim, &p->pos, p->queued_input[at]);
        p->queued[at] = false;
        p->last_applied_seq = seq;
        p->any_applied = true;
        p->inputs_applied++;
        if (p->unreported_arrival_ns == 0)
            p->unreported_arrival_ns = p->queued_arrival_ns[at];
        at = oldest_queued(p, &pending);
    }
}

void tw_match_step(struct tw_match *m)
{
    for (uint32_t i = 0; i < m->capacity; i++)
        if (m->players[i].active)
            apply_inputs(m, &m->players[i]);
    m->tick++;
}

static void put_entity(const struct tw_match *m, uint32_t slot,
                       struct tw_snap_entity *e)
{
    const struct tw_player *p = &m->players[slot];
    e->slot = (uint16_t)slot;
    e->qx = tw_quantize(p->pos.x, m->sim.world.x, m->quant.max_qx);
    e->qy = tw_quantize(p->pos.y, m->sim.world.y, m->quant.max_qy);
}

unsigned tw_match_build_snapshot(const struct tw_match *m, int slot,
                                 struct tw_msg_snapshot *out,
                                 unsigned max_entities)
{
    const struct tw_player *self = &m->players[slot];
    unsigned cut = 0;

    out->tick = m->tick;
    out->ack_input_seq = self->any_applied ? self->last_applied_seq : 0;
    out->count = 0;
    if (max_entities > TW_SNAPSHOT_MAX_ENTITIES)
        max_entities = TW_SNAPSHOT_MAX_ENTITIES;
    if (max_entities == 0)
        return m->active_count;

    put_entity(m, (uint32_t)slot, &out->entities[out->count++]);
    for (uint32_t i = 0; i < m->capacity; i++) {
        if (!m->players[i].active || (int)i == slot)
            continue;
        if (out->count >= max_entities) {
            cut++;
            continue;
        }
        put_entity(m, i, &out->entities[out->count++]);
    }
    return cut;
}
