/** random ops (see registry.ts). */
export {};
