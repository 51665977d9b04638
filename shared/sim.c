#include "sim.h"

#include <math.h>

static float clampf(float v, float lo, float hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

void tw_sim_step(const struct tw_sim_params *p, struct tw_vec2 *pos,
                 struct tw_input in)
{
    float dx = (float)in.dx / 127.0f;
    float dy = (float)in.dy / 127.0f;

    /* A diagonal is no faster than a straight line. */
    float len = sqrtf(dx * dx + dy * dy);
    if (len > 1.0f) {
        dx /= len;
        dy /= len;
    }
    float step = p->max_speed * p->dt;
    pos->x = clampf(pos->x + dx * step, 0.0f, p->world.x);
    pos->y = clampf(pos->y + dy * step, 0.0f, p->world.y);
}
