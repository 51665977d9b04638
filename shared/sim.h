/*
 * Player movement, shared by the server (authority) and the client
 * (prediction) so both compute bit-identical positions from one input.
 */
#ifndef TW_SIM_H
#define TW_SIM_H

#include "protocol.h"

struct tw_sim_params {
    struct tw_vec2 world; /* width and height; positions stay in 0..world */
    float max_speed;      /* units per second */
    float dt;             /* seconds per tick */
};

/* Moves pos by one tick of input, clamped to max speed and the world. */
void tw_sim_step(const struct tw_sim_params *p, struct tw_vec2 *pos,
                 struct tw_input in);

#endif
