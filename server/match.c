#include "match.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define GRID_MAX_CELLS 256u /* per axis */
#define NO_CELL UINT32_MAX

/*
 * Cells at least half view_radius wide: a view spans at most 5 x 5 cells,
 * which cover 6.25 r^2 around the view disc instead of the 9 r^2 of
 * 3 x 3 cells of width r.
 */
static uint32_t grid_cells(float extent, float radius, float *cell)
{
    float n = floorf(extent / (radius * 0.5f));
    if (!(n >= 1.0f))
        n = 1.0f;
    if (n > (float)GRID_MAX_CELLS)
        n = (float)GRID_MAX_CELLS;
    *cell = extent / n;
    return (uint32_t)n;
}

static int alloc_views(struct tw_match *m, const struct tw_config *cfg)
{
    m->view_radius = cfg->match.view_radius;
    m->max_visible = cfg->match.max_visible;
    if (m->max_visible > TW_SNAPSHOT_MAX_ENTITIES)
        m->max_visible = TW_SNAPSHOT_MAX_ENTITIES;
    m->grid_cols = grid_cells(m->sim.world.x, m->view_radius, &m->cell_w);
    m->grid_rows = grid_cells(m->sim.world.y, m->view_radius, &m->cell_h);

    size_t cap = m->capacity;
    size_t cells = (size_t)m->grid_cols * m->grid_rows;
    m->cell_start = calloc(cells + 1, sizeof *m->cell_start);
    m->cell_items = calloc(cap, sizeof *m->cell_items);
    m->player_cell = calloc(cap, sizeof *m->player_cell);
    m->candidates = calloc(cap, sizeof *m->candidates);
    m->history = calloc(cap * TW_SNAPSHOT_RING, sizeof *m->history);
    m->sent = calloc(cap * TW_SNAPSHOT_RING, sizeof *m->sent);
    m->sent_slots = calloc(cap * TW_SNAPSHOT_RING * m->max_visible,
                           sizeof *m->sent_slots);
    if (!m->cell_start || !m->cell_items || !m->player_cell ||
        !m->candidates || !m->history || !m->sent || !m->sent_slots)
        return -1;
    for (size_t i = 0; i < cap; i++)
        m->player_cell[i] = NO_CELL;
    return TW_OK;
}

int tw_match_init(struct tw_match *m, const struct tw_config *cfg,
                  uint32_t capacity)
{
    memset(m, 0, sizeof *m);
    if (capacity > TW_MAX_SLOTS)
        return -1;
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
    if (alloc_views(m, cfg) != TW_OK) {
        tw_match_free(m);
        return -1;
    }
    return TW_OK;
}

void tw_match_free(struct tw_match *m)
{
    free(m->players);
    free(m->cell_start);
    free(m->cell_items);
    free(m->player_cell);
    free(m->candidates);
    free(m->history);
    free(m->sent);
    free(m->sent_slots);
    memset(m, 0, sizeof *m);
}

static struct tw_sent *sent_ring(const struct tw_match *m, uint32_t slot)
{
    return &m->sent[(size_t)slot * TW_SNAPSHOT_RING];
}

static uint16_t *sent_slots(const struct tw_match *m, uint32_t slot,
                            unsigned at)
{
    return &m->sent_slots[((size_t)slot * TW_SNAPSHOT_RING + at) *
                          m->max_visible];
}

static void forget_sent(struct tw_match *m, uint32_t slot)
{
    memset(sent_ring(m, slot), 0, TW_SNAPSHOT_RING * sizeof *m->sent);
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
        p->sent_session = -1;
        forget_sent(m, i);
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
    m->players[slot].sent_session = -1;
    m->player_cell[slot] = NO_CELL; /* out of every view until re-indexed */
    forget_sent(m, (uint32_t)slot);
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

    /*
     * One input per tick, two while more wait: a queue that built up (the
     * client ran ahead, or two inputs came in one tick) drains instead of
     * adding a tick of latency to every later input.
     */
    unsigned budget = pending > 1 ? TW_MAX_INPUTS_PER_TICK : 1;
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

static uint32_t cell_index(float v, float cell, uint32_t cells)
{
    if (!(v > 0.0f))
        return 0;
    uint32_t c = (uint32_t)(v / cell);
    return c >= cells ? cells - 1 : c;
}

/* Quantizes every position once and sorts the players into grid cells. */
static void index_positions(struct tw_match *m)
{
    struct tw_qpos *hist = &m->history[(size_t)(m->tick % TW_SNAPSHOT_RING) *
                                       m->capacity];
    size_t cells = (size_t)m->grid_cols * m->grid_rows;
    memset(m->cell_start, 0, (cells + 1) * sizeof *m->cell_start);

    for (uint32_t i = 0; i < m->capacity; i++) {
        const struct tw_player *p = &m->players[i];
        if (!p->active) {
            m->player_cell[i] = NO_CELL;
            continue;
        }
        hist[i].qx = tw_quantize(p->pos.x, m->sim.world.x, m->quant.max_qx);
        hist[i].qy = tw_quantize(p->pos.y, m->sim.world.y, m->quant.max_qy);
        uint32_t c = cell_index(p->pos.y, m->cell_h, m->grid_rows) *
                         m->grid_cols +
                     cell_index(p->pos.x, m->cell_w, m->grid_cols);
        m->player_cell[i] = c;
        m->cell_start[c]++;
    }
    /* Counts become cell ends; filling each cell from its end leaves
     * cell_start[c] at the cell's start and cell_start[c + 1] at its end. */
    for (size_t c = 1; c < cells; c++)
        m->cell_start[c] += m->cell_start[c - 1];
    m->cell_start[cells] = m->cell_start[cells - 1];
    for (uint32_t i = m->capacity; i-- > 0;) {
        uint32_t c = m->player_cell[i];
        if (c != NO_CELL)
            m->cell_items[--m->cell_start[c]] = (struct tw_aoi_item){
                .x = m->players[i].pos.x, .y = m->players[i].pos.y,
                .qx = hist[i].qx, .qy = hist[i].qy, .slot = i};
    }
}

void tw_match_step(struct tw_match *m)
{
    for (uint32_t i = 0; i < m->capacity; i++)
        if (m->players[i].active)
            apply_inputs(m, &m->players[i]);
    m->tick++;
    index_positions(m);
}

/* Moves the n nearest candidates to the front (quickselect on d2). */
static void select_nearest(struct tw_aoi_candidate *c, size_t count, size_t n)
{
    size_t lo = 0, hi = count - 1;
    while (lo < hi) {
        float pivot = c[lo + (hi - lo) / 2].d2;
        size_t i = lo, j = hi;
        while (i <= j) {
            while (c[i].d2 < pivot)
                i++;
            while (c[j].d2 > pivot)
                j--;
            if (i <= j) {
                struct tw_aoi_candidate t = c[i];
                c[i] = c[j];
                c[j] = t;
                i++;
                if (j == 0)
                    break;
                j--;
            }
        }
        if (n <= j)
            hi = j;
        else if (n >= i)
            lo = i;
        else
            return;
    }
}

/*
 * Copies the view slot was sent last tick, with this tick's positions and
 * without players gone since. Returns false when there is none to reuse.
 */
static bool reuse_view(const struct tw_match *m, int slot,
                       const struct tw_qpos *hist, struct tw_msg_snapshot *out,
                       unsigned max_entities)
{
    const struct tw_player *self = &m->players[slot];
    uint32_t prev_tick = m->tick - 1;
    unsigned at = prev_tick % TW_SNAPSHOT_RING;
    const struct tw_sent *prev = &sent_ring(m, (uint32_t)slot)[at];
    if (self->sent_session != self->session || prev->tick != prev_tick ||
        prev_tick == 0 || prev->count == 0 || prev->count > max_entities)
        return false;
    const uint16_t *slots = sent_slots(m, (uint32_t)slot, at);
    if (slots[0] != (uint16_t)slot)
        return false;
    for (unsigned i = 0; i < prev->count; i++) {
        uint16_t other = slots[i];
        if (m->player_cell[other] == NO_CELL)
            continue;
        out->entities[out->count++] = (struct tw_snap_entity){
            .slot = other, .qx = hist[other].qx, .qy = hist[other].qy};
    }
    return true;
}

unsigned tw_match_build_snapshot(struct tw_match *m, int slot,
                                 struct tw_msg_snapshot *out,
                                 unsigned max_entities)
{
    struct tw_player *self = &m->players[slot];
    const struct tw_qpos *hist =
        &m->history[(size_t)(m->tick % TW_SNAPSHOT_RING) * m->capacity];

    out->tick = m->tick;
    out->ack_input_seq = self->any_applied ? self->last_applied_seq : 0;
    out->base_tick = 0;
    out->count = 0;
    if (max_entities > m->max_visible)
        max_entities = m->max_visible;
    if (max_entities == 0 || m->player_cell[slot] == NO_CELL)
        return 0;

    /* Views change slowly: each is searched every few ticks, staggered. */
    if ((m->tick + (uint32_t)slot) % TW_VIEW_REFRESH_TICKS != 0 &&
        reuse_view(m, slot, hist, out, max_entities))
        return self->view_cut;

    out->entities[0] = (struct tw_snap_entity){
        .slot = (uint16_t)slot, .qx = hist[slot].qx, .qy = hist[slot].qy};
    out->count = 1;

    /*
     * Everyone within view_radius, from the 5 x 5 cells around; the grid
     * holds positions, so the scan reads each row of cells in one run.
     */
    const float r = m->view_radius, r2 = r * r;
    const struct tw_vec2 at = self->pos;
    uint32_t cx0 = cell_index(at.x - r, m->cell_w, m->grid_cols);
    uint32_t cx1 = cell_index(at.x + r, m->cell_w, m->grid_cols);
    uint32_t cy0 = cell_index(at.y - r, m->cell_h, m->grid_rows);
    uint32_t cy1 = cell_index(at.y + r, m->cell_h, m->grid_rows);
    size_t n = 0;
    for (uint32_t cy = cy0; cy <= cy1; cy++) {
        uint32_t row = cy * m->grid_cols;
        uint32_t end = m->cell_start[row + cx1 + 1];
        for (uint32_t k = m->cell_start[row + cx0]; k < end; k++) {
            const struct tw_aoi_item *it = &m->cell_items[k];
            float dx = it->x - at.x, dy = it->y - at.y;
            float d2 = dx * dx + dy * dy;
            /* Written always, kept only in range: no branch to miss. */
            m->candidates[n] = (struct tw_aoi_candidate){.d2 = d2, .item = k};
            n += d2 <= r2;
        }
    }

    /* Drop the receiver and anyone removed since the grid was built. */
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t other = m->cell_items[m->candidates[i].item].slot;
        if (other != (uint32_t)slot && m->player_cell[other] != NO_CELL)
            m->candidates[kept++] = m->candidates[i];
    }
    n = kept;

    size_t room = max_entities - 1;
    unsigned cut = 0;
    if (n > room) {
        if (room > 0)
            select_nearest(m->candidates, n, room);
        cut = (unsigned)(n - room);
        n = room;
    }
    for (size_t i = 0; i < n; i++) {
        const struct tw_aoi_item *it = &m->cell_items[m->candidates[i].item];
        out->entities[out->count++] = (struct tw_snap_entity){
            .slot = (uint16_t)it->slot, .qx = it->qx, .qy = it->qy};
    }
    self->view_cut = cut;
    return cut;
}

const struct tw_msg_snapshot *tw_match_baseline(const struct tw_match *m,
                                                int slot,
                                                struct tw_msg_snapshot *base)
{
    const struct tw_player *p = &m->players[slot];
    uint32_t ack = p->ack_snapshot;
    if (p->sent_session != p->session || ack == 0 || ack >= m->tick ||
        m->tick - ack >= TW_SNAPSHOT_RING)
        return NULL;
    unsigned at = ack % TW_SNAPSHOT_RING;
    const struct tw_sent *sent = &sent_ring(m, (uint32_t)slot)[at];
    if (sent->tick != ack)
        return NULL;

    const uint16_t *slots = sent_slots(m, (uint32_t)slot, at);
    const struct tw_qpos *hist = &m->history[(size_t)at * m->capacity];
    base->tick = ack;
    base->ack_input_seq = 0;
    base->base_tick = 0;
    base->count = sent->count;
    for (unsigned i = 0; i < sent->count; i++) {
        uint16_t other = slots[i];
        base->entities[i] = (struct tw_snap_entity){
            .slot = other, .qx = hist[other].qx, .qy = hist[other].qy};
    }
    return base;
}

void tw_match_record_sent(struct tw_match *m, int slot,
                          const struct tw_msg_snapshot *sent)
{
    struct tw_player *p = &m->players[slot];
    if (p->sent_session != p->session) {
        forget_sent(m, (uint32_t)slot);
        p->sent_session = p->session;
    }
    unsigned at = sent->tick % TW_SNAPSHOT_RING;
    struct tw_sent *s = &sent_ring(m, (uint32_t)slot)[at];
    /* Only the current tick's positions are in the history. */
    if (sent->tick != m->tick || sent->count > m->max_visible) {
        s->tick = 0;
        return;
    }
    uint16_t *slots = sent_slots(m, (uint32_t)slot, at);
    for (unsigned i = 0; i < sent->count; i++)
        slots[i] = sent->entities[i].slot;
    s->tick = sent->tick;
    s->count = sent->count;
}
