# Where each corpus lies on this machine. gm_render is rendered by local/data.sh: nothing to set.
GM_RENDER=
