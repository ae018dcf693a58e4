// Preloaded into the Portkey gateway by bench/gateway.sh (`node --import`): its start-up
// script calls `serve({ port })` with no host, which would listen on every interface. This
// binds every TCP server in the process that names no host to 127.0.0.1 instead.
import net from "node:net";

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === "number") {
    if (args.length < 2 || typeof args[1] === "function") {
      args.splice(1, 0, "127.0.0.1");
    } else if (args[1] === undefined || args[1] === null) {
      args[1] = "127.0.0.1";
    }
  } else if (args[0] && typeof args[0] === "object" && args[0].host === undefined && args[0].path === undefined) {
    args[0] = { ...args[0], host: "127.0.0.1" };
  }
  return listen.apply(this, args);
};
