// UI strings in English and Chinese, and the enum labels of the replay data.
// Markup carries data-i18n (text), data-i18n-title (title + aria-label) and
// data-i18n-placeholder; code calls t(key, params) for dynamic strings.

const STRINGS = {
  en: {
    "app.title": "Dispatch Replay",
    "app.subtitle": "Ground-handling auto-dispatch",
    "lang.current": "EN",
    "lang.toggle.title": "Switch to Chinese",
    "auth.signOut": "Sign out",
    "conn.connecting": "Connecting",
    "conn.live": "Live",
    "conn.reconnecting": "Reconnecting",
    "conn.paused": "Paused",
    "conn.ended": "Ended",
    "conn.error": "Error",
    "share.button": "Share",
    "share.title": "Share this session",
    "share.help": "Anyone with this link can watch and control this replay with you.",
    "share.copy": "Copy",
    "share.copied": "Copied",
    "share.ownerOnly": "Only the session's owner can share it",
    "share.failed": "Could not create a share link",
    "close": "Close",
    "day.title": "Airport and service day",
    "controls.play": "Play",
    "controls.pause": "Pause",
    "controls.stepBack": "Step back (paused)",
    "controls.stepForward": "Step forward (paused)",
    "controls.speed": "Speed",
    "controls.range": "Range",
    "controls.rangeApply": "Apply",
    "controls.rangeFull": "Whole day",
    "controls.loop": "Loop",
    "controls.jump": "Jump to flight…",
    "controls.jumpTitle": "Jump to a flight's arrival / on-block time",
    "controls.outsideRange": "outside range",
    "controls.filters": "Filters",
    "controls.fitRange": "Zoom timeline to range",
    "filters.title": "Server-side filters",
    "filters.vehicleTypes": "Vehicle type",
    "filters.taskTypes": "Task type",
    "filters.taskStatuses": "Task status",
    "filters.stands": "Stand",
    "filters.apply": "Apply",
    "filters.clear": "Clear all",
    "filters.all": "All",
    "map.zoomIn": "Zoom in",
    "map.zoomOut": "Zoom out",
    "map.fit": "Fit apron",
    "map.trails": "Trails",
    "map.vehicles": "{n} vehicles",
    "map.legend": "Legend",
    "map.remoteStand": "Remote stand",
    "map.contactStand": "Contact stand",
    "vehicle.type": "Type",
    "vehicle.state": "State",
    "vehicle.speed": "Speed",
    "vehicle.task": "Task",
    "vehicle.flight": "Flight",
    "vehicle.stand": "Stand",
    "vehicle.fix": "Last fix",
    "vehicle.none": "—",
    "flights.title": "Flight board",
    "flights.all": "All",
    "flights.arrivals": "Arrivals",
    "flights.departures": "Departures",
    "flights.callsign": "Flight",
    "flights.route": "Route",
    "flights.stand": "Stand",
    "flights.sched": "Sched",
    "flights.est": "Est",
    "flights.actual": "Act",
    "flights.status": "Status",
    "flights.empty": "No flights at this time",
    "tasks.title": "Tasks",
    "tasks.type": "Task",
    "tasks.flightStand": "Flight · Stand",
    "tasks.vehicle": "Vehicle",
    "tasks.planned": "Start",
    "tasks.plannedWindow": "Planned {start}–{end}",
    "tasks.status": "Status",
    "tasks.empty": "No tasks at this time",
    "tasks.active": "{n} active",
    "notes.title": "Notifications",
    "notes.empty": "No notifications yet",
    "clock.tz": "Airport time",
    "clock.speed": "{s}×",
    "timeline.title": "Timeline: click or drag to seek",
    "toast.rangeApplied": "Range applied",
    "toast.filtersApplied": "Filters applied",
    "toast.error": "Request failed: {msg}",
    "toast.sessionGone": "The session no longer exists",
    "toast.accessRevoked": "The session's owner removed you from it",
    "loading": "Loading replay…",
    "error.noData": "No published replay data was found.",
    "error.start": "Could not start the replay: {msg}",
    "error.badTime": "Use HH:MM (24 h; 24:00 = end of day; +1 = the next day), e.g. 07:30 or 02:00+1",
    "controls.rangeStart": "Range start (airport time; +1 = the next day)",
    "controls.rangeEnd": "Range end (airport time; +1 = the next day; before the start = the next day)",
    "error.rangeOrder": "The range must end after it starts ({start} – {end})",
    "problem.not-published": "No replay data is published for that time",
    "problem.invalid-playback": "Not possible with this playback",
    "problem.validation-error": "The server refused these values",
    "flights.actualTitle": "Actual time of the flight's latest milestone: ldg = landed, in = on-block, out = off-block, t/o = take-off",
    "flights.milestone.landing": "ldg",
    "flights.milestone.on_block": "in",
    "flights.milestone.off_block": "out",
    "flights.milestone.takeoff": "t/o",
    "flights.milestone.other": "",
    "flights.milestoneTitle.landing": "Landed {at}",
    "flights.milestoneTitle.on_block": "On-block {at}",
    "flights.milestoneTitle.off_block": "Off-block {at}",
    "flights.milestoneTitle.takeoff": "Took off {at}",
    "flights.milestoneTitle.other": "Actual time {at}",
    "vehicle.noTask": "None",
    "vehicle.lastTask": "Last task",
    "vehicle.lastTaskText": "{task} · {status} {at}",
    "clock.tzTitle": "Airport time: {zone} ({id}, {offset})",
    "clock.source.data": "data time",
    "clock.source.offline": "not live",
    "clock.sourceTitle.data": "The clock shows the time of the newest data on the map: at high speed the stream merges many ticks into one frame.",
    "clock.sourceTitle.offline": "The stream is disconnected: the clock shows the time of the newest data received and stands still until the stream is back.",
    "clock.playbackAt": "Playback is at {at}.",
    "keys.help": "Space play/pause · ←/→ step or ±30 s · Shift+←/→ 10 steps or ±5 min · +/− speed · Esc close",
    "turnaround.stand": "Stand",
    "turnaround.offBlockDelay": "Off-block {n} min late",
    "turnaround.close": "Close the turnaround",
    "turnaround.onBlock": "On-block",
    "turnaround.offBlock": "Off-block",
    "turnaround.planned": "Planned",
    "turnaround.actual": "Actual",
    "turnaround.late": "{n} min late",
    "turnaround.travel": "drive {n} min",
    "turnaround.error": "Could not load the turnaround: {msg}",
    "turnaround.legend": "Outline: plan · bar: actual (red: past the planned end) · bold: critical path to off-block · click a bar to jump there",
  },
  zh: {
    "app.title": "调度回放",
    "app.subtitle": "地面保障自动调度",
    "lang.current": "中文",
    "lang.toggle.title": "切换到英文",
    "auth.signOut": "退出登录",
    "conn.connecting": "连接中",
    "conn.live": "实时",
    "conn.reconnecting": "重新连接中",
    "conn.paused": "已暂停",
    "conn.ended": "已结束",
    "conn.error": "错误",
    "share.button": "分享",
    "share.title": "分享此会话",
    "share.help": "持有此链接的人可以与您一起观看并控制此回放。",
    "share.copy": "复制",
    "share.copied": "已复制",
    "share.ownerOnly": "只有会话创建者可以分享",
    "share.failed": "无法创建分享链接",
    "close": "关闭",
    "day.title": "机场与运营日",
    "controls.play": "播放",
    "controls.pause": "暂停",
    "controls.stepBack": "后退一步（暂停时）",
    "controls.stepForward": "前进一步（暂停时）",
    "controls.speed": "速度",
    "controls.range": "时间范围",
    "controls.rangeApply": "应用",
    "controls.rangeFull": "全天",
    "controls.loop": "循环",
    "controls.jump": "跳转到航班…",
    "controls.jumpTitle": "跳转到航班的到达/上轮挡时间",
    "controls.outsideRange": "超出范围",
    "controls.filters": "筛选",
    "controls.fitRange": "时间轴缩放到范围",
    "filters.title": "服务器端筛选",
    "filters.vehicleTypes": "车辆类型",
    "filters.taskTypes": "任务类型",
    "filters.taskStatuses": "任务状态",
    "filters.stands": "机位",
    "filters.apply": "应用",
    "filters.clear": "全部清除",
    "filters.all": "全部",
    "map.zoomIn": "放大",
    "map.zoomOut": "缩小",
    "map.fit": "适应机坪",
    "map.trails": "轨迹",
    "map.vehicles": "{n} 辆车",
    "map.legend": "图例",
    "map.remoteStand": "远机位",
    "map.contactStand": "近机位",
    "vehicle.type": "类型",
    "vehicle.state": "状态",
    "vehicle.speed": "速度",
    "vehicle.task": "任务",
    "vehicle.flight": "航班",
    "vehicle.stand": "机位",
    "vehicle.fix": "最后定位",
    "vehicle.none": "—",
    "flights.title": "航班动态",
    "flights.all": "全部",
    "flights.arrivals": "进港",
    "flights.departures": "出港",
    "flights.callsign": "航班",
    "flights.route": "航线",
    "flights.stand": "机位",
    "flights.sched": "计划",
    "flights.est": "预计",
    "flights.actual": "实际",
    "flights.status": "状态",
    "flights.empty": "此时没有航班",
    "tasks.title": "任务",
    "tasks.type": "任务",
    "tasks.flightStand": "航班 · 机位",
    "tasks.vehicle": "车辆",
    "tasks.planned": "开始",
    "tasks.plannedWindow": "计划 {start}–{end}",
    "tasks.status": "状态",
    "tasks.empty": "此时没有任务",
    "tasks.active": "{n} 个进行中",
    "notes.title": "系统通知",
    "notes.empty": "暂无通知",
    "clock.tz": "机场时间",
    "clock.speed": "{s}×",
    "timeline.title": "时间轴：点击或拖动以跳转",
    "toast.rangeApplied": "时间范围已应用",
    "toast.filtersApplied": "筛选已应用",
    "toast.error": "请求失败：{msg}",
    "toast.sessionGone": "会话已不存在",
    "toast.accessRevoked": "会话所有者已将您移出该会话",
    "loading": "正在加载回放…",
    "error.noData": "没有找到已发布的回放数据。",
    "error.start": "无法启动回放：{msg}",
    "error.badTime": "请使用 24 小时制 HH:MM（24:00 表示当天结束，+1 表示次日），例如 07:30 或 02:00+1",
    "controls.rangeStart": "范围开始（机场时间；+1 表示次日）",
    "controls.rangeEnd": "范围结束（机场时间；+1 表示次日；早于开始时间即为次日）",
    "error.rangeOrder": "结束时间必须晚于开始时间（{start} – {end}）",
    "problem.not-published": "该时段没有已发布的回放数据",
    "problem.invalid-playback": "当前回放状态下无法执行",
    "problem.validation-error": "服务器拒绝了这些取值",
    "flights.actualTitle": "航班最近一个节点的实际时间：落地、上轮挡、撤轮挡、起飞",
    "flights.milestone.landing": "落地",
    "flights.milestone.on_block": "上挡",
    "flights.milestone.off_block": "撤挡",
    "flights.milestone.takeoff": "起飞",
    "flights.milestone.other": "",
    "flights.milestoneTitle.landing": "落地 {at}",
    "flights.milestoneTitle.on_block": "上轮挡 {at}",
    "flights.milestoneTitle.off_block": "撤轮挡 {at}",
    "flights.milestoneTitle.takeoff": "起飞 {at}",
    "flights.milestoneTitle.other": "实际时间 {at}",
    "vehicle.noTask": "无",
    "vehicle.lastTask": "上一任务",
    "vehicle.lastTaskText": "{task}，{status}于 {at}",
    "clock.tzTitle": "机场时间：{zone}（{id}，{offset}）",
    "clock.source.data": "数据时间",
    "clock.source.offline": "未连接",
    "clock.sourceTitle.data": "时钟显示地图上最新数据的时间：高倍速时数据流把多个时间片合并为一帧。",
    "clock.sourceTitle.offline": "数据流已断开：时钟显示最后收到的数据的时间，恢复连接前不再走动。",
    "clock.playbackAt": "回放进度为 {at}。",
    "keys.help": "空格 播放/暂停 · ←/→ 单步或 ±30 秒 · Shift+←/→ 10 步或 ±5 分钟 · +/− 调速 · Esc 关闭",
    "turnaround.stand": "机位",
    "turnaround.offBlockDelay": "撤轮挡晚 {n} 分钟",
    "turnaround.close": "关闭过站视图",
    "turnaround.onBlock": "上轮挡",
    "turnaround.offBlock": "撤轮挡",
    "turnaround.planned": "计划",
    "turnaround.actual": "实际",
    "turnaround.late": "晚 {n} 分钟",
    "turnaround.travel": "行驶 {n} 分钟",
    "turnaround.error": "无法加载过站：{msg}",
    "turnaround.legend": "框：计划 · 条：实际（红色：超过计划结束） · 粗体：撤轮挡关键路径 · 点击条形跳转",
  },
};

const ENUMS = {
  en: {
    vehicle_type: {
      fuel_truck: "Fuel truck",
      catering_truck: "Catering truck",
      baggage_tractor: "Baggage tractor",
      cleaning_van: "Cleaning van",
      water_truck: "Water truck",
      lavatory_truck: "Lavatory truck",
      pushback_tug: "Pushback tug",
      passenger_bus: "Passenger bus",
    },
    vehicle_state: {
      idle: "Idle",
      en_route: "En route",
      waiting: "Waiting",
      servicing: "Servicing",
      returning: "Returning",
    },
    task_type: {
      refuel: "Refuel",
      catering: "Catering",
      baggage_unload: "Baggage unload",
      baggage_load: "Baggage load",
      cleaning: "Cleaning",
      water: "Potable water",
      lavatory: "Lavatory",
      pushback: "Pushback",
      passenger_bus: "Passenger bus",
    },
    task_status: {
      created: "Created",
      assigned: "Assigned",
      en_route: "En route",
      arrived: "Arrived",
      in_progress: "In progress",
      completed: "Completed",
      cancelled: "Cancelled",
    },
    flight_status: {
      scheduled: "Scheduled",
      delayed: "Delayed",
      approaching: "Approaching",
      landed: "Landed",
      on_block: "On block",
      boarding: "Boarding",
      off_block: "Off block",
      departed: "Departed",
      cancelled: "Cancelled",
    },
    level: { info: "Info", warning: "Warning", critical: "Critical" },
  },
  zh: {
    vehicle_type: {
      fuel_truck: "加油车",
      catering_truck: "配餐车",
      baggage_tractor: "行李牵引车",
      cleaning_van: "清洁车",
      water_truck: "清水车",
      lavatory_truck: "污水车",
      pushback_tug: "飞机牵引车",
      passenger_bus: "摆渡车",
    },
    vehicle_state: {
      idle: "空闲",
      en_route: "前往任务",
      waiting: "等待作业",
      servicing: "作业中",
      returning: "返回中",
    },
    task_type: {
      refuel: "加油",
      catering: "配餐",
      baggage_unload: "卸行李",
      baggage_load: "装行李",
      cleaning: "客舱清洁",
      water: "加清水",
      lavatory: "污水处理",
      pushback: "推出",
      passenger_bus: "旅客摆渡",
    },
    task_status: {
      created: "已创建",
      assigned: "已指派",
      en_route: "前往中",
      arrived: "已到位",
      in_progress: "进行中",
      completed: "已完成",
      cancelled: "已取消",
    },
    flight_status: {
      scheduled: "计划",
      delayed: "延误",
      approaching: "进近",
      landed: "已落地",
      on_block: "已上轮挡",
      boarding: "登机中",
      off_block: "已撤轮挡",
      departed: "已起飞",
      cancelled: "已取消",
    },
    level: { info: "信息", warning: "警告", critical: "严重" },
  },
};

export const LANGUAGES = ["en", "zh"];
const STORAGE_KEY = "dispatch-replay.lang";
const listeners = new Set();
let current = initialLanguage();

function initialLanguage() {
  let stored = null;
  try {
    stored = localStorage.getItem(STORAGE_KEY);
  } catch {
    stored = null; // storage disabled: fall back to the browser's language
  }
  if (stored && LANGUAGES.includes(stored)) return stored;
  const preferred = (navigator.language || "en").toLowerCase();
  return preferred === "zh" || preferred.startsWith("zh-") ? "zh" : "en";
}

/** The current language code ("en" or "zh"). */
export function language() {
  return current;
}

/** A UI string, with {name} placeholders filled from params. */
export function t(key, params) {
  const text = STRINGS[current][key] ?? STRINGS.en[key] ?? key;
  if (!params) return text;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in params ? String(params[name]) : ""));
}

/** The label of an enum value (vehicle_type, task_status, ...); the raw value if unknown. */
export function label(kind, value) {
  if (value === null || value === undefined) return "—";
  return ENUMS[current][kind]?.[value] ?? ENUMS.en[kind]?.[value] ?? String(value);
}

/** Every value of an enum, in display order. */
export function enumValues(kind) {
  return Object.keys(ENUMS.en[kind] ?? {});
}

/** Translate the static markup under root. */
export function applyTranslations(root = document) {
  document.documentElement.lang = current === "zh" ? "zh-CN" : "en";
  for (const el of root.querySelectorAll("[data-i18n]")) {
    el.textContent = t(el.dataset.i18n);
  }
  for (const el of root.querySelectorAll("[data-i18n-title]")) {
    const text = t(el.dataset.i18nTitle);
    el.title = text;
    el.setAttribute("aria-label", text);
  }
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) {
    el.placeholder = t(el.dataset.i18nPlaceholder);
  }
}

/** Switch language, re-translate the markup, and tell listeners to re-render. */
export function setLanguage(lang) {
  if (!LANGUAGES.includes(lang) || lang === current) return;
  current = lang;
  try {
    localStorage.setItem(STORAGE_KEY, lang);
  } catch {
    // storage disabled: the choice lasts for this page only
  }
  applyTranslations();
  for (const listener of listeners) listener(lang);
}

/** Call listener(lang) after every language switch. */
export function onLanguageChange(listener) {
  listeners.add(listener);
}
