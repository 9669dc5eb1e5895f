import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// The build lands in the Python package, which `kiln up` serves at `/`.
export default defineConfig({
  plugins: [react()],
  build: {
    outDir: "../src/kiln/server/webui/dist",
    emptyOutDir: true,
    assetsDir: "assets",
    reportCompressedSize: true,
    chunkSizeWarningLimit: 800,
  },
  server: { proxy: { "/api": "http://127.0.0.1:8080" } },
});
