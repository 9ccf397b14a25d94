/** The setpoint range every thermostat accepts; hardware limits are usually wider. */
export const SETPOINT_MIN_C = 5;
export const SETPOINT_MAX_C = 35;
export const BOOST_MAX_MINUTES = 240;
