/** linalg ops (see registry.ts). */
export {};
