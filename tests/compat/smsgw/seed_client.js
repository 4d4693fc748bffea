let retryDelay = 1000;
const MAX_DELAY = 30000;

function connect() {
  const ws = new WebSocket("wss://smsgateway-api.onrender.com/ws");

  ws.onopen = () => {
    retryDelay = 1000;
    ws.send(JSON.stringify({ type: "auth", apiKey: "YOUR_API_KEY" }));
  };

  ws.onmessage = (event) => {
    const data = JSON.parse(event.data);
    if (data.type === "ping") return;
    if (data.type === "auth_ok") return;
    // Handle sms_status, sms_inbound events
    console.log("Event:", data);
  };

  ws.onclose = () => {
    setTimeout(() => {
      retryDelay = Math.min(retryDelay * 2, MAX_DELAY);
      connect();
    }, retryDelay);
  };
}

connect();
