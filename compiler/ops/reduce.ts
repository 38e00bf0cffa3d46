/** reduce ops (see registry.ts). */
export {};
