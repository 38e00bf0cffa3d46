/** nn ops (see registry.ts). */
export {};
