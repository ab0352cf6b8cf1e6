import { Entangle } from "./entangle.ts";
import { EntangleProxy } from "./entangle-proxy.ts";

export const capabilities = [Entangle, EntangleProxy];
