import { Entangle } from "./entangle.ts";

export const capabilities = [Entangle];
