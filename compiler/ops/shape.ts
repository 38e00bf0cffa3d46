/** shape ops (see registry.ts). */
export {};
